// Checking a document against an event, docs/receipts.md §11. Run it only on the event of a
// receipt that verified (§10): a content check on an unverified receipt proves nothing.
//
//   contentHashOf(event)              → { ok: true, algorithm, digest } | { ok: false, code, message }
//   createDocumentHasher(algorithm)   → { update(chunk), digestHex() }  (hash a file in chunks)
//   checkDocument(event, { bytes })                 hash the file's exact bytes with the event's algorithm
//   checkDocument(event, { digestHex, algorithm })  compare a given digest (algorithm optional:
//                                                   what the digest was computed with)
//
// `event` is plain JavaScript, as in `verifyReceipt(...).receipt.event`.

import { toHex } from './bytes.js';
import { DOCUMENT_ALGORITHMS } from './hashes.js';

const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const fail = (code, message) => ({ ok: false, code, message });

/** §11 step 1: the event's `payload.content_hash`, checked. */
export function contentHashOf(event) {
  const payload = isPlainObject(event) && Object.hasOwn(event, 'payload') ? event.payload : undefined;
  if (!isPlainObject(payload) || !Object.hasOwn(payload, 'content_hash')) {
    return fail('no-content-hash', 'The event attests no document (its payload has no content_hash).');
  }
  const c = payload.content_hash;
  const keys = isPlainObject(c) ? Object.keys(c).sort() : [];
  if (keys.length !== 2 || keys[0] !== 'algorithm' || keys[1] !== 'digest'
      || !Object.hasOwn(DOCUMENT_ALGORITHMS, c.algorithm) || typeof c.digest !== 'string') {
    return fail('malformed', 'The event\'s content_hash is not an object of exactly "algorithm" (sha-256, sha-512, sha3-256, sha3-512 or sm3) and "digest" (a string).');
  }
  return { ok: true, algorithm: c.algorithm, digest: c.digest };
}

/** An incremental hasher for one of the §11 algorithms; `digestHex()` gives lowercase hex. */
export function createDocumentHasher(algorithm) {
  if (!Object.hasOwn(DOCUMENT_ALGORITHMS, algorithm)) throw new RangeError(`unknown document algorithm ${algorithm}`);
  const inner = DOCUMENT_ALGORITHMS[algorithm].hasher.create();
  return {
    update(chunk) {
      inner.update(chunk);
      return this;
    },
    digestHex: () => toHex(inner.digest()),
  };
}

/** §11 steps 1–3. Returns { ok: true, code: null, message } or { ok: false, code, message }. */
export function checkDocument(event, { bytes, digestHex, algorithm } = {}) {
  const c = contentHashOf(event);
  if (!c.ok) return c;
  let candidate;
  if (bytes !== undefined) {
    candidate = createDocumentHasher(c.algorithm).update(bytes).digestHex();
  } else {
    const given = normaliseGivenDigest(digestHex, c.algorithm);
    if (!given.ok) return given;
    candidate = given.digest;
    if (algorithm !== undefined && algorithm !== c.algorithm) {
      return fail('content-mismatch', `The digest was computed with ${algorithm}, but the event attests a ${c.algorithm} digest.`);
    }
  }
  // Exact string comparison: an attested digest that is not lowercase hex of the right length
  // can never match, and is reported as a mismatch (§11 step 3).
  if (candidate !== c.digest) {
    return fail('content-mismatch', `The document's ${c.algorithm} digest ${candidate} differs from the attested digest ${c.digest}.`);
  }
  return { ok: true, code: null, message: `The document's ${c.algorithm} digest ${candidate} is the one the event attests.` };
}

// §11 step 2 for a given digest: hex in either case, of exactly the algorithm's length.
function normaliseGivenDigest(digestHex, algorithm) {
  if (typeof digestHex !== 'string' || !/^[0-9a-fA-F]*$/.test(digestHex)) {
    return fail('bad-digest', 'The given digest is not hexadecimal.');
  }
  const want = 2 * DOCUMENT_ALGORITHMS[algorithm].bytes;
  if (digestHex.length !== want) {
    return fail('bad-digest', `The given digest has ${digestHex.length} hex characters; a ${algorithm} digest has ${want}.`);
  }
  return { ok: true, digest: digestHex.toLowerCase() };
}
