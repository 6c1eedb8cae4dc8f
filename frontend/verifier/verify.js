// The verification procedure of docs/receipts.md §10, step by step, and the public API used by
// the command line (cli.js) and the court web page:
//
//   parseGenesis(bytes)            → { ok: true, genesis } | { ok: false, code: 'genesis', message }
//   verifyReceipt(bytes, genesis)  → { ok, code, message, steps, result, receipt }
//   checkDocument(event, options)  → { ok, code, message }            (re-exported from document.js)
//
// `code` is null when the receipt verified, else a failure code of §10.1 (`malformed`,
// `version`, `pending`, `chain-mismatch`, …), `genesis` when the genesis is not a valid one, or
// `internal-error` should this verifier itself fail (never a verdict on the receipt). `steps`
// has one entry per step of §10, in order, each 'pass', 'fail' or 'not-run'.
//
// Every u64 of a receipt (heights, sizes, indices, powers) is a BigInt in `receipt` and `result`,
// because a u64 does not fit a JS number exactly.

import { bytesEqual, fromHex, toHex } from './bytes.js';
import { Failure, check } from './errors.js';
import { ShapeError } from './fields.js';
import { genesisInternals, readGenesis } from './genesis.js';
import { jcsBytes } from './jcs.js';
import { INCLUSION_REASONS, leafHash, verifyInclusion } from './merkle.js';
import { approvalMessage, attestationMessage } from './messages.js';
import { readReceiptShape, unsupportedVersion } from './receipt-shape.js';
import { verifySignature } from './signatures.js';
import { StrictJsonError, isJsonObject, parseStrictJson } from './strict-json.js';
import { blockTimeProblem } from './block-time.js';
import { applyValidatorSetRules } from './validator-set.js';

export { checkDocument, contentHashOf, createDocumentHasher } from './document.js';

/** Parses and validates a genesis document (§5). Never throws for bad input. */
export function parseGenesis(bytes) {
  try {
    return { ok: true, genesis: readGenesis(bytes) };
  } catch (e) {
    if (e instanceof Failure) return { ok: false, code: e.code, message: e.message };
    throw e;
  }
}

/**
 * Verifies a receipt (bytes or string) against a genesis from parseGenesis (either its result
 * object or its `genesis`). Never throws for bad input: every outcome is in the result.
 */
export function verifyReceipt(receiptBytes, genesis) {
  const steps = STEPS.map(({ id, number, title }) => ({ id, number, title, status: 'not-run', detail: '' }));
  const resolved = resolveGenesis(genesis);
  if (!resolved.ok) return outcome(steps, resolved.code, resolved.message, null, null);
  const ctx = { input: receiptBytes, genesis: resolved.genesis, ...genesisInternals(resolved.genesis) };
  for (let i = 0; i < STEPS.length; i++) {
    try {
      steps[i].detail = STEPS[i].run(ctx);
      steps[i].status = 'pass';
    } catch (e) {
      steps[i].status = 'fail';
      if (!(e instanceof Failure)) {
        // A bug of this verifier, never a verdict on the receipt: say so plainly.
        steps[i].detail = `internal error: ${e && e.message}`;
        return outcome(steps, 'internal-error', `internal error of the verifier at step ${i + 1}: ${e && e.message}`, null, ctx.receipt);
      }
      steps[i].detail = e.message;
      return outcome(steps, e.code, e.message, null, ctx.receipt);
    }
  }
  return outcome(steps, null, ctx.summary, ctx.result, ctx.receipt);
}

function outcome(steps, code, message, result, receipt) {
  const why = code === 'genesis' ? 'the genesis document is not valid' : 'an earlier step failed';
  for (const step of steps) if (step.status === 'not-run') step.detail = `Not checked: ${why}.`;
  return { ok: code === null, code, message, steps, result: result ?? null, receipt: receipt ?? null };
}

function resolveGenesis(genesis) {
  if (genesis && genesis.ok === false) {
    return { ok: false, code: 'genesis', message: genesis.message || 'the genesis document is invalid' };
  }
  const candidate = genesis && genesis.ok === true ? genesis.genesis : genesis;
  if (!genesisInternals(candidate)) {
    return { ok: false, code: 'genesis', message: 'no valid genesis: pass the result of parseGenesis' };
  }
  return { ok: true, genesis: candidate };
}

const short = (hex) => `${hex.slice(0, 12)}…`;
const plural = (n, one, many) => `${n} ${n === 1n || n === 1 ? one : many}`;

// Each step: id, §10 number, a title for people, and run(ctx) → detail of a pass, or throws
// Failure(code, message).
const STEPS = [
  {
    id: 'parse', number: 1, title: 'Readable receipt',
    run(ctx) {
      try {
        ctx.tree = parseStrictJson(ctx.input);
      } catch (e) {
        if (e instanceof StrictJsonError) throw new Failure('malformed', `The receipt is not strict JSON: ${e.message}.`);
        throw e;
      }
      return 'The file is strict JSON: UTF-8, no duplicate keys, no lone surrogates, numbers in range.';
    },
  },
  {
    id: 'version', number: 2, title: 'Format version',
    run(ctx) {
      const version = unsupportedVersion(ctx.tree);
      check(version === null, 'version', () => `The receipt is of format version ${version}; this verifier reads version 1 only.`);
      return 'No other format version is claimed.';
    },
  },
  {
    id: 'shape', number: 3, title: 'Receipt layout',
    run(ctx) {
      try {
        Object.assign(ctx, readReceiptShape(ctx.tree));
      } catch (e) {
        if (e instanceof ShapeError) throw new Failure('malformed', `The receipt is malformed: ${e.message}.`);
        throw e;
      }
      const kind = ctx.receipt.status === 'anchored' ? 'An anchored' : 'A pending';
      return `${kind} receipt of format version 1, with every required field, the right types and no unknown field.`;
    },
  },
  {
    id: 'status', number: 4, title: 'Anchored, not pending',
    run(ctx) {
      check(ctx.receipt.status === 'anchored', 'pending',
        'The receipt is pending: the event was recorded but is not anchored yet, so the receipt proves nothing. Fetch it again later.');
      return 'The receipt is anchored: it holds the whole proof.';
    },
  },
  {
    id: 'chain', number: 5, title: 'Chain',
    run(ctx) {
      const { block_header: header, transaction } = ctx.receipt;
      const chain = ctx.genesis.chain_id;
      check(header.chain_id === chain, 'chain-mismatch',
        () => `The block belongs to chain ${JSON.stringify(header.chain_id)}, not to the genesis chain ${JSON.stringify(chain)}.`);
      check(transaction.chain_id === chain, 'chain-mismatch',
        () => `The anchor transaction names chain ${JSON.stringify(transaction.chain_id)}, not the genesis chain ${JSON.stringify(chain)}.`);
      return `The block and the anchor transaction both belong to the genesis chain ${JSON.stringify(chain)}.`;
    },
  },
  {
    id: 'event-digest', number: 6, title: 'Event digest',
    run(ctx) {
      let canonical;
      try {
        canonical = jcsBytes(ctx.raw.event);
      } catch (e) {
        throw new Failure('malformed', `The event cannot be canonicalized: ${e.message}.`);
      }
      const computed = toHex(ctx.H(canonical));
      const stated = ctx.receipt.event_digest;
      check(computed === stated, 'event-digest',
        () => `The event does not match its digest: it hashes to ${computed}, the receipt states ${stated}. The event or its digest was altered.`);
      const event = ctx.raw.event;
      for (const field of ['id', 'type']) {
        check(isJsonObject(event) && typeof event.get(field) === 'string', 'event-field',
          `The event has no ${field === 'id' ? 'id' : 'type'} string ("${field}").`);
      }
      return `The event hashes to ${computed}, as stated. Event ${event.get('id')}, type ${event.get('type')}.`;
    },
  },
  {
    id: 'batch-path', number: 7, title: 'Batch path',
    run(ctx) {
      const { batch_proof: proof, transaction, event_digest: digest } = ctx.receipt;
      const verdict = verifyInclusion(ctx.H, proof.leaf_index, transaction.batch_size,
        leafHash(ctx.H, fromHex(digest)), proof.path.map(fromHex), fromHex(transaction.batch_root));
      check(verdict.ok, 'batch-proof',
        () => `The batch path does not place the event in the anchored batch (${verdict.reason}: ${INCLUSION_REASONS[verdict.reason]}).`);
      return `The event digest is entry ${proof.leaf_index} of a batch of ${transaction.batch_size}, under batch root ${short(transaction.batch_root)}.`;
    },
  },
  {
    id: 'transaction-path', number: 8, title: 'Transaction path',
    run(ctx) {
      const { transaction_proof: proof, block_header: header } = ctx.receipt;
      const txHash = ctx.H(jcsBytes(ctx.raw.transaction));
      const verdict = verifyInclusion(ctx.H, proof.leaf_index, header.transaction_count,
        leafHash(ctx.H, txHash), proof.path.map(fromHex), fromHex(header.transaction_root));
      check(verdict.ok, 'transaction-proof',
        () => `The transaction path does not place the anchor transaction in the block (${verdict.reason}: ${INCLUSION_REASONS[verdict.reason]}).`);
      return `The anchor transaction (hash ${short(toHex(txHash))}) is transaction ${proof.leaf_index} of ${header.transaction_count} in the block.`;
    },
  },
  {
    id: 'validator-set', number: 9, title: 'Validator set in force',
    run(ctx) {
      ctx.setInForce = followChanges(ctx);
      const changes = ctx.receipt.validator_set_changes.length;
      const stated = ctx.receipt.block_header.validator_set_hash;
      check(bytesEqual(fromHex(stated), ctx.setInForce.hash), 'validator-set',
        () => `The block names validator set ${short(stated)}, but the set in force at its height is ${short(toHex(ctx.setInForce.hash))} (${changes === 0 ? 'the genesis set' : `reached through ${plural(changes, 'change', 'changes')}`}).`);
      const names = ctx.setInForce.validators.map((v) => v.name).join(', ');
      return `${changes === 0 ? 'The genesis validator set' : `The set reached from the genesis through ${plural(changes, 'approved change', 'approved changes')}`} is in force and is the one the block names: ${names} (total power ${ctx.setInForce.totalPower}).`;
    },
  },
  {
    id: 'block-time', number: 10, title: 'Block time',
    run(ctx) {
      const time = ctx.receipt.block_header.time;
      const problem = blockTimeProblem(time);
      check(problem === null, 'block-time',
        () => `The block time ${JSON.stringify(time)} is not of the form YYYY-MM-DDTHH:MM:SS.sssZ: ${problem}.`);
      return `Block time ${time} (UTC).`;
    },
  },
  {
    id: 'height-proposer', number: 11, title: 'Height and proposer',
    run(ctx) {
      const { height, proposer } = ctx.receipt.block_header;
      check(height !== 0n, 'malformed', 'The block height is 0, which is the genesis itself, not a block.');
      check(ctx.setInForce.byName.has(proposer), 'malformed',
        () => `The block's proposer ${JSON.stringify(proposer)} is not a validator of the set in force.`);
      return `Block height ${height}, proposed by ${proposer}, a validator of the set in force.`;
    },
  },
  {
    id: 'attestations', number: 12, title: 'Attestations',
    run(ctx) {
      const header = ctx.receipt.block_header;
      const blockHash = ctx.H(jcsBytes(ctx.raw.block_header));
      const message = attestationMessage(ctx.genesis.chain_id, header.height, blockHash);
      const seen = new Set();
      let signed = 0n;
      ctx.receipt.attestations.forEach((a, i) => {
        const label = `Attestation ${i + 1} (${JSON.stringify(a.validator)})`;
        const validator = ctx.setInForce.byName.get(a.validator);
        check(validator !== undefined, 'unknown-validator', `${label} names no validator of the set in force.`);
        check(!seen.has(a.validator), 'duplicate-attestation', `${label}: this validator has already attested.`);
        seen.add(a.validator);
        check(validator.key !== undefined, 'genesis-key', `${label}: the validator's public key is not valid.`);
        const verdict = verifySignature(validator.key, a.signature, message);
        check(verdict.ok, 'bad-signature', () => `${label}: the signature is ${verdict.reason === 'Malformed' ? 'malformed' : 'not valid'} for this block (${verdict.detail}).`);
        signed += validator.power;
      });
      ctx.blockHash = toHex(blockHash);
      ctx.signed = signed;
      const count = ctx.receipt.attestations.length;
      return count === 0
        ? 'The receipt carries no attestation.'
        : `${plural(count, 'signature', 'signatures')} of block ${short(ctx.blockHash)} verified: ${ctx.receipt.attestations.map((a) => a.validator).join(', ')}.`;
    },
  },
  {
    id: 'quorum', number: 13, title: 'Quorum',
    run(ctx) {
      const total = ctx.setInForce.totalPower;
      check(3n * ctx.signed > 2n * total, 'no-quorum',
        () => `The signers hold ${ctx.signed} of ${total} voting power: two thirds or less, so the block is not final.`);
      return `The signers hold ${ctx.signed} of ${total} voting power, more than two thirds.`;
    },
  },
  {
    id: 'report', number: 14, title: 'Result',
    run(ctx) {
      const { receipt } = ctx;
      const event = ctx.raw.event;
      ctx.result = {
        chain_id: ctx.genesis.chain_id,
        height: receipt.block_header.height,
        block_hash: ctx.blockHash,
        block_time: receipt.block_header.time,
        event_id: event.get('id'),
        event_type: event.get('type'),
        event_digest: receipt.event_digest,
        batch_root: receipt.transaction.batch_root,
        signers: receipt.attestations.map((a) => a.validator),
        signed_power: ctx.signed,
        total_power: ctx.setInForce.totalPower,
      };
      ctx.summary = `Verified: event ${ctx.result.event_id} (${ctx.result.event_type}) existed no later than ${ctx.result.block_time}, anchored in block ${ctx.result.height} of chain ${ctx.result.chain_id}, attested by ${ctx.result.signers.join(', ')}.`;
      return ctx.summary;
    },
  },
];

/**
 * §10 step 9 / §9.6.2: follows the receipt's validator-set changes from the genesis set and
 * returns the set in force at the block's height. Throws Failure.
 */
function followChanges(ctx) {
  const { genesis, H } = ctx;
  const height = ctx.receipt.block_header.height;
  let set = ctx.set;
  let last = 0n;
  ctx.receipt.validator_set_changes.forEach((c, i) => {
    const label = `Validator-set change ${i + 1}`;
    check(c.chain_id === genesis.chain_id, 'chain-mismatch',
      () => `${label} names chain ${JSON.stringify(c.chain_id)}, not the genesis chain ${JSON.stringify(genesis.chain_id)}.`);
    check(last < c.effective_height && c.effective_height <= height, 'validator-set-change',
      () => `${label} takes effect at height ${c.effective_height}, which is not after ${last === 0n ? 'the genesis (height 0)' : `the previous change (height ${last})`} and at or below the block's height ${height}.`);
    check(bytesEqual(fromHex(c.previous_set_hash), set.hash), 'validator-set-change',
      () => `${label} replaces set ${short(c.previous_set_hash)}, but the set in force before it is ${short(toHex(set.hash))}.`);
    const rules = applyValidatorSetRules(c.validator_set, ctx.raw.change_sets[i], genesis.signature_alg, H);
    check(rules.ok, 'validator-set-change', () => `${label} names a validator set that breaks the rules: ${rules.reason}.`);
    const message = approvalMessage(genesis.chain_id, c.effective_height, set.hash, rules.set.hash);
    const seen = new Set();
    let approved = 0n;
    c.approvals.forEach((a, j) => {
      const who = `${label}, approval ${j + 1} (${JSON.stringify(a.validator)})`;
      const validator = set.byName.get(a.validator);
      check(validator !== undefined, 'validator-set-change', `${who} names no validator of the set the change replaces.`);
      check(!seen.has(a.validator), 'validator-set-change', `${who}: this validator has already approved the change.`);
      seen.add(a.validator);
      const verdict = verifySignature(validator.key, a.signature, message);
      check(verdict.ok, 'validator-set-change', () => `${who}: the signature does not verify (${verdict.detail}).`);
      approved += validator.power;
    });
    check(3n * approved > 2n * set.totalPower, 'validator-set-change',
      () => `${label} is approved by ${approved} of ${set.totalPower} voting power of the set it replaces: two thirds or less.`);
    set = rules.set;
    last = c.effective_height;
  });
  return set;
}
