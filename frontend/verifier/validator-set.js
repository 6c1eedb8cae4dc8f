// Validator sets: their shape (docs/receipts.md §5.1), the validator-set rules (§5.2) that the
// genesis set and every set named by a change obey, and their hash H(JCS(set)) (§5.4).

import { asString, asU64, readArray, readObject } from './fields.js';
import { jcsBytes } from './jcs.js';
import { decodeValidatorKey } from './keys.js';

/** §5.2: the sum of all powers is at most 2^53 − 1 (powers are hashed as JSON doubles). */
export const MAX_TOTAL_POWER = 2n ** 53n - 1n;

const VALIDATOR_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Reads `{ "validators": [ { name, organisation, public_key, power }, … ] }` with exact members
 * and types (§3.3). Checks shape only; the rules are applyValidatorSetRules'. Throws ShapeError.
 */
export function readValidatorSetShape(value, path) {
  const set = readObject(value, path, ['validators']);
  const validators = readArray(set, 'validators', path).map((v, i) => {
    const at = `${path}.validators[${i}]`;
    const validator = readObject(v, at, ['name', 'organisation', 'public_key', 'power']);
    return {
      name: asString(validator.get('name'), `${at}.name`),
      organisation: asString(validator.get('organisation'), `${at}.organisation`),
      public_key: asString(validator.get('public_key'), `${at}.public_key`),
      power: asU64(validator.get('power'), `${at}.power`),
    };
  });
  return { validators };
}

/**
 * Applies the validator-set rules of §5.2 with `signatureAlg`, and hashes the set with H over
 * `raw`, the parsed JSON of the set. Returns { ok: true, set } with the set ready for use
 * (decoded keys, lookup by name, total power, hash), or { ok: false, reason }.
 */
export function applyValidatorSetRules(shape, raw, signatureAlg, H) {
  const { validators } = shape;
  if (validators.length === 0) return { ok: false, reason: 'the validator set is empty' };
  const byName = new Map();
  const keysSeen = new Set();
  let totalPower = 0n;
  const ready = [];
  for (const v of validators) {
    const label = `validator ${JSON.stringify(v.name)}`;
    if (!VALIDATOR_NAME.test(v.name)) {
      return { ok: false, reason: `${label}: a name must be 1 to 64 characters of A-Z, a-z, 0-9, ".", "_" or "-"` };
    }
    if (byName.has(v.name)) return { ok: false, reason: `two validators are named ${JSON.stringify(v.name)}` };
    if (keysSeen.has(v.public_key)) return { ok: false, reason: `${label} has the same public key as another validator` };
    if (v.power < 1n) return { ok: false, reason: `${label} has power 0; every power must be at least 1` };
    const decoded = decodeValidatorKey(signatureAlg, v.public_key);
    if (!decoded.ok) return { ok: false, reason: `${label}: invalid ${signatureAlg} public key: ${decoded.reason}` };
    const entry = Object.freeze({ ...v, key: decoded.key });
    byName.set(v.name, entry);
    keysSeen.add(v.public_key);
    ready.push(entry);
    totalPower += v.power; // BigInt: no overflow, so no saturation is needed
  }
  if (totalPower > MAX_TOTAL_POWER) {
    return { ok: false, reason: `the powers add up to ${totalPower}, more than 2^53 − 1 = ${MAX_TOTAL_POWER}` };
  }
  return { ok: true, set: Object.freeze({ validators: ready, byName, totalPower, hash: validatorSetHash(H, raw) }) };
}

/** §5.4: H(JCS(validator_set)). */
export function validatorSetHash(H, raw) {
  return H(jcsBytes(raw));
}
