// The hash functions of docs/receipts.md: the chain's H (§4.1) and the document algorithms (§11).

import { sha256, sha3_256, sha512, sha3_512, sm3 } from '../vendor/crypto.js';

/** §4.1: `hash_alg` → H. Every H gives 32 bytes. */
export const CHAIN_HASHES = Object.freeze({
  'sha3-256': sha3_256,
  'sha-256': sha256,
  sm3,
});

/** §11: `content_hash.algorithm` → hasher and digest length in bytes. */
export const DOCUMENT_ALGORITHMS = Object.freeze({
  'sha-256': { hasher: sha256, bytes: 32 },
  'sha-512': { hasher: sha512, bytes: 64 },
  'sha3-256': { hasher: sha3_256, bytes: 32 },
  'sha3-512': { hasher: sha3_512, bytes: 64 },
  sm3: { hasher: sm3, bytes: 32 },
});

/** H for a supported `hash_alg`, else undefined. */
export function chainHash(hashAlg) {
  return Object.hasOwn(CHAIN_HASHES, hashAlg) ? CHAIN_HASHES[hashAlg] : undefined;
}
