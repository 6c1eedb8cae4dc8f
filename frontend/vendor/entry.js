// The one entry point of crypto.js, the vendored cryptography of the receipt verifier and of the
// court web page. Everything here is a re-export of an audited library (@noble/hashes,
// @noble/curves) or a thin definition on top of one (src/sm3.js, src/sm2.js). The spec-level
// procedures (strict Ed25519, SM2 B1–B7, key validation rules) are in frontend/verifier, where
// they can be read against docs/receipts.md.
//
// Hashers follow noble's interface: `h(bytes)` → digest bytes, and `h.create()` → an object with
// `update(chunk)` and `digest()`, so a browser can hash a large file chunk by chunk.

export { sha256, sha512 } from '@noble/hashes/sha2.js';
export { sha3_256, sha3_512 } from '@noble/hashes/sha3.js';
export { sm3 } from './src/sm3.js';

// Ed25519 (RFC 8032). `ed25519Point.fromBytes(bytes, false)` decodes strictly (y < p, no
// negative zero) and `point.isSmallOrder()`, `point.toBytes()`, `multiplyUnsafe` are what the
// strict verification of docs/receipts.md §9.3.1 is built from.
import { ed25519 } from '@noble/curves/ed25519.js';
export const ed25519Point = ed25519.Point;

// SM2 recommended curve (GB/T 32918.5-2016) on noble's Weierstrass arithmetic.
export { sm2Point, SM2_PARAMS } from './src/sm2.js';
