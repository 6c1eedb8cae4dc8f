// JSON Canonicalization Scheme, RFC 8785 (docs/receipts.md §3: JCS(v)).
//
// Works on values of the strict parser (Map objects, JsonNumber numbers) and, for convenience,
// on plain JavaScript values (objects, finite numbers). Every hash of the chain is taken over
// these bytes, so each rule below is the RFC's:
//   - object members sorted by the UTF-16 code units of their names (JS string comparison is
//     exactly that order), no whitespace;
//   - strings with the minimal escaping of RFC 8785 §3.2.2.2;
//   - numbers as IEEE 754 doubles written by ECMAScript Number.prototype.toString
//     (`1.0` → `1`, `-0` → `0`, `1e21` → `1e+21`, `0.000001` → `0.000001`).

import { JsonNumber } from './strict-json.js';
import { utf8 } from './bytes.js';

/** JCS(value) as a string. Throws TypeError for a value JSON cannot hold (e.g. Infinity). */
export function canonicalize(value) {
  if (value === null) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'string') return canonicalString(value);
  if (value instanceof JsonNumber) return canonicalNumber(value.value);
  if (typeof value === 'number') return canonicalNumber(value);
  if (Array.isArray(value)) return `[${value.map(canonicalize).join(',')}]`;
  if (value instanceof Map) return canonicalObject([...value]);
  if (typeof value === 'object') return canonicalObject(Object.entries(value));
  throw new TypeError(`JCS: ${typeof value} is not a JSON value`);
}

/** JCS(value) as UTF-8 bytes, the input of H. */
export function jcsBytes(value) {
  return utf8(canonicalize(value));
}

function canonicalObject(entries) {
  // Default sort compares UTF-16 code units, as RFC 8785 §3.2.3 requires. Keys are unique
  // (the strict parser refuses duplicates), so the order is total.
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${canonicalString(k)}:${canonicalize(v)}`).join(',')}}`;
}

function canonicalNumber(n) {
  if (!Number.isFinite(n)) throw new TypeError('JCS: numbers must be finite');
  // ECMAScript Number::toString is RFC 8785's number form; String(-0) is already "0".
  return String(n);
}

const SHORT_ESCAPES = { 0x08: '\\b', 0x09: '\\t', 0x0a: '\\n', 0x0c: '\\f', 0x0d: '\\r', 0x22: '\\"', 0x5c: '\\\\' };

function canonicalString(s) {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (SHORT_ESCAPES[c] !== undefined) out += SHORT_ESCAPES[c];
    else if (c < 0x20) out += '\\u' + c.toString(16).padStart(4, '0');
    else out += s[i];
  }
  return out + '"';
}
