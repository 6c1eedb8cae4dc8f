// Reading typed fields out of a strictly parsed JSON value (docs/receipts.md §3.1–§3.3): exact
// member sets, strings, u64 integer literals, digests. Each reader throws ShapeError with a
// sentence that names the field; the caller decides which failure code that is.

import { JsonNumber, isJsonObject } from './strict-json.js';

export const U64_MAX = 2n ** 64n - 1n;

export class ShapeError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ShapeError';
  }
}

/** Names the JSON type of a parsed value, for messages. */
export function jsonTypeName(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (isJsonObject(value)) return 'an object';
  if (value instanceof JsonNumber) return `the number ${value.text}`;
  if (typeof value === 'string') return 'a string';
  return String(value);
}

/** `value` must be an object with exactly the members `names` (§3.3: no unknown, none missing). */
export function readObject(value, path, names) {
  if (!isJsonObject(value)) throw new ShapeError(`${path} must be a JSON object, not ${jsonTypeName(value)}`);
  for (const key of value.keys()) {
    if (!names.includes(key)) throw new ShapeError(`${path} has an unknown field ${JSON.stringify(key)}`);
  }
  for (const name of names) {
    if (!value.has(name)) throw new ShapeError(`${path} lacks the field "${name}"`);
  }
  return value;
}

/** A string (never null). */
export function asString(value, path) {
  if (typeof value !== 'string') throw new ShapeError(`${path} must be a string, not ${jsonTypeName(value)}`);
  return value;
}

export function asArray(value, path) {
  if (!Array.isArray(value)) throw new ShapeError(`${path} must be an array, not ${jsonTypeName(value)}`);
  return value;
}

/**
 * §3.2: a non-negative JSON integer literal (no sign, fraction or exponent) in 0 … 2^64 − 1,
 * returned exactly as a BigInt from its text (a double would lose values above 2^53).
 * Returns undefined for anything else.
 */
export function u64FromJson(value) {
  if (!(value instanceof JsonNumber) || !value.isIntegerLiteral) return undefined;
  const n = BigInt(value.text);
  return n <= U64_MAX ? n : undefined;
}

export function asU64(value, path) {
  const n = u64FromJson(value);
  if (n === undefined) {
    const what = value instanceof JsonNumber && value.isIntegerLiteral
      ? `${value.text} is more than 2^64 − 1`
      : `found ${jsonTypeName(value)}`;
    throw new ShapeError(`${path} must be a whole number written without sign, decimals or exponent (${what})`);
  }
  return n;
}

/** §3.1: a digest is exactly 64 lowercase hex characters. */
export function isDigestText(value) {
  return typeof value === 'string' && /^[0-9a-f]{64}$/.test(value);
}

export function asDigest(value, path) {
  if (!isDigestText(value)) {
    throw new ShapeError(`${path} must be a digest: exactly 64 lowercase hex characters`);
  }
  return value;
}

// The same readers applied to one member of an object already checked by readObject.
export const readString = (object, key, path) => asString(object.get(key), `${path}.${key}`);
export const readArray = (object, key, path) => asArray(object.get(key), `${path}.${key}`);
export const readU64 = (object, key, path) => asU64(object.get(key), `${path}.${key}`);
export const readDigest = (object, key, path) => asDigest(object.get(key), `${path}.${key}`);
