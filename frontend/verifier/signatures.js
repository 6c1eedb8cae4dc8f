// Signature verification, docs/receipts.md §9.3: strict Ed25519 (§9.3.1) and SM2 with SM3 and
// the fixed identifier 1234567812345678 (§9.3.2). Both are written out step by step, on the
// point arithmetic of crypto.js, because the spec fixes exactly which signatures are accepted:
// common library calls differ (noble's ed25519.verify uses the cofactored equation and accepts
// small-order R; sm-crypto-v2's SM2 verify skips B1, B2 and the infinity check of B6), and a
// verifier that accepts more than the reference would be broken.

import { ed25519Point, sha512, sm2Point, SM2_PARAMS, sm3 } from '../vendor/crypto.js';
import { bytesEqual, bytesToBigIntBE, bytesToBigIntLE, concatBytes, fromHex } from './bytes.js';

/** Ed25519 group order L = 2^252 + 27742317777372353535851937790883648493. */
export const ED25519_L = 2n ** 252n + 27742317777372353535851937790883648493n;

/**
 * §9.3: verifies the signature string `signatureHex` over `message` with a decoded validator
 * key (keys.js). Returns { ok: true } or { ok: false, reason: 'Malformed' | 'Invalid', detail }.
 */
export function verifySignature(key, signatureHex, message) {
  if (typeof signatureHex !== 'string' || !/^[0-9a-f]{128}$/.test(signatureHex)) {
    return { ok: false, reason: 'Malformed', detail: 'the signature is not 128 lowercase hex characters' };
  }
  const signature = fromHex(signatureHex);
  const detail = key.scheme === 'ed25519'
    ? ed25519StrictReject(key, signature, message)
    : sm2Reject(key, signature, message);
  return detail === null ? { ok: true } : { ok: false, reason: 'Invalid', detail };
}

/**
 * §9.3.1, the verify_strict rule of ed25519-dalek 2. Returns null to accept, or why it rejects.
 * `key` is a decoded Ed25519 key: { point: A, bytes: A_bytes }.
 */
export function ed25519StrictReject(key, signature, message) {
  const rBytes = signature.subarray(0, 32);
  const S = bytesToBigIntLE(signature.subarray(32, 64));
  if (S >= ED25519_L) return 'S is not less than the group order L (non-canonical S)';
  let R;
  try {
    R = ed25519Point.fromBytes(rBytes, false);
  } catch {
    return 'R does not decode to a curve point';
  }
  if (R.isSmallOrder()) return 'R is a point of small order';
  if (key.point.isSmallOrder()) return 'the public key is a point of small order';
  const k = bytesToBigIntLE(sha512(concatBytes(rBytes, key.bytes, message))) % ED25519_L;
  // Cofactorless: R' = [S]B − [k]A must encode to exactly R_bytes.
  const rPrime = ed25519Point.BASE.multiplyUnsafe(S).subtract(key.point.multiplyUnsafe(k));
  if (!bytesEqual(rPrime.toBytes(), rBytes)) return 'the signature does not verify for this message and key';
  return null;
}

/**
 * §9.3.2, GB/T 32918.2-2016 steps B1–B7. Returns null to accept, or why it rejects.
 * `key` is a decoded SM2 key: { point: P_A, za: Z_A }.
 */
export function sm2Reject(key, signature, message) {
  const { n } = SM2_PARAMS;
  const r = bytesToBigIntBE(signature.subarray(0, 32));
  const s = bytesToBigIntBE(signature.subarray(32, 64));
  if (r < 1n || r >= n) return 'r is not in [1, n − 1]'; // B1
  if (s < 1n || s >= n) return 's is not in [1, n − 1]'; // B2
  const e = bytesToBigIntBE(sm3(concatBytes(key.za, message))); // B3, B4
  const t = (r + s) % n; // B5
  if (t === 0n) return 't = (r + s) mod n is 0';
  const point = sm2Point.BASE.multiplyUnsafe(s).add(key.point.multiplyUnsafe(t)); // B6
  if (point.is0()) return '[s]G + [t]P is the point at infinity';
  const x1 = point.toAffine().x;
  if ((e + x1) % n !== r) return 'the signature does not verify for this message and key'; // B7
  return null;
}
