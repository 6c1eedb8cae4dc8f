// The genesis document, docs/receipts.md §5: strict parsing, validation, and its hashes.
// A genesis that fails any rule is refused whole (code `genesis`): no receipt is checked
// against it.

import { toHex } from './bytes.js';
import { Failure } from './errors.js';
import { ShapeError, readObject, readString } from './fields.js';
import { chainHash } from './hashes.js';
import { jcsBytes } from './jcs.js';
import { StrictJsonError, parseStrictJson } from './strict-json.js';
import { applyValidatorSetRules, readValidatorSetShape } from './validator-set.js';

const GENESIS_FIELDS = ['chain_id', 'genesis_time', 'hash_alg', 'signature_alg', 'validator_set'];
const CHAIN_ID = /^[a-z0-9][a-z0-9.-]{0,63}$/;
const SIGNATURE_ALGS = ['ed25519', 'sm2'];

// What verification needs beyond the public fields, kept out of reach of callers so that only a
// genesis validated here can be passed to verifyReceipt.
const internals = new WeakMap();

/**
 * Parses and validates a genesis document (bytes or string). Returns the frozen public genesis:
 * its five fields (powers as BigInt) plus `genesis_hash` (§5.3) and `validator_set_hash` (§5.4),
 * in lowercase hex. Throws Failure('genesis', …) when the document is not a valid genesis.
 */
export function readGenesis(input) {
  let tree;
  try {
    tree = parseStrictJson(input);
  } catch (e) {
    if (e instanceof StrictJsonError) throw new Failure('genesis', `the genesis is not strict JSON: ${e.message}`);
    throw e;
  }
  let shape;
  try {
    shape = readGenesisShape(tree);
  } catch (e) {
    if (e instanceof ShapeError) throw new Failure('genesis', `the genesis is malformed: ${e.message}`);
    throw e;
  }
  const { chain_id: chainId, hash_alg: hashAlg, signature_alg: signatureAlg } = shape;
  if (!CHAIN_ID.test(chainId)) {
    throw new Failure('genesis', `chain_id ${JSON.stringify(chainId)} is not 1 to 64 characters of a-z, 0-9, "." or "-" starting with a letter or digit`);
  }
  const H = chainHash(hashAlg);
  if (!H) throw new Failure('genesis', `hash_alg ${JSON.stringify(hashAlg)} is not supported (sha3-256, sha-256, sm3)`);
  if (!SIGNATURE_ALGS.includes(signatureAlg)) {
    throw new Failure('genesis', `signature_alg ${JSON.stringify(signatureAlg)} is not supported (ed25519, sm2)`);
  }
  const rules = applyValidatorSetRules(shape.validator_set, tree.get('validator_set'), signatureAlg, H);
  if (!rules.ok) throw new Failure('genesis', `the genesis validator set breaks the rules: ${rules.reason}`);
  const genesis = deepFreeze({
    ...shape,
    genesis_hash: toHex(H(jcsBytes(tree))),
    validator_set_hash: toHex(rules.set.hash),
  });
  internals.set(genesis, Object.freeze({ H, set: rules.set }));
  return genesis;
}

function readGenesisShape(tree) {
  const g = readObject(tree, 'the genesis', GENESIS_FIELDS);
  return {
    chain_id: readString(g, 'chain_id', 'genesis'),
    genesis_time: readString(g, 'genesis_time', 'genesis'),
    hash_alg: readString(g, 'hash_alg', 'genesis'),
    signature_alg: readString(g, 'signature_alg', 'genesis'),
    validator_set: readValidatorSetShape(g.get('validator_set'), 'genesis.validator_set'),
  };
}

/** { H, set } of a genesis returned by readGenesis, or undefined for any other object. */
export function genesisInternals(genesis) {
  return genesis !== null && typeof genesis === 'object' ? internals.get(genesis) : undefined;
}

function deepFreeze(value) {
  if (value !== null && typeof value === 'object') {
    Object.values(value).forEach(deepFreeze);
    Object.freeze(value);
  }
  return value;
}

