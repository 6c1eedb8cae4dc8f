// Validator public keys (docs/receipts.md §4.2, §5.2): decoding and the validity rules that a key
// of the genesis, or of a validator set named by a change, must pass.

import { ed25519Point, sm2Point, SM2_PARAMS, sm3 } from '../vendor/crypto.js';
import { bigIntToBytesBE, bytesEqual, bytesToBigIntBE, concatBytes, fromHex } from './bytes.js';

/** §9.3.2: every validator's distinguishing identifier ID_A, 16 ASCII bytes. */
export const SM2_DISTINGUISHING_ID = new TextEncoder().encode('1234567812345678');

/**
 * Decodes `publicKeyHex` as a key of `signatureAlg` ("ed25519" or "sm2") under §5.2.
 * Returns { ok: true, key } or { ok: false, reason }; `key` is what signatures.js verifies with.
 */
export function decodeValidatorKey(signatureAlg, publicKeyHex) {
  if (signatureAlg === 'ed25519') return decodeEd25519Key(publicKeyHex);
  if (signatureAlg === 'sm2') return decodeSm2Key(publicKeyHex);
  return { ok: false, reason: `unsupported signature_alg ${JSON.stringify(signatureAlg)}` };
}

// §5.2 with "ed25519": 64 lowercase hex; RFC 8032 §5.1.3 decoding; canonical; not small order.
function decodeEd25519Key(hex) {
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    return { ok: false, reason: 'an Ed25519 key must be exactly 64 lowercase hex characters' };
  }
  const bytes = fromHex(hex);
  let point;
  try {
    // zip215 = false is RFC 8032 decoding: it refuses y ≥ p and a set sign bit with x = 0.
    point = ed25519Point.fromBytes(bytes, false);
  } catch {
    return { ok: false, reason: 'the key does not decode to a point of the Ed25519 curve (RFC 8032 §5.1.3)' };
  }
  if (!bytesEqual(point.toBytes(), bytes)) {
    return { ok: false, reason: 'the key is not the canonical encoding of its point' };
  }
  if (point.isSmallOrder()) {
    return { ok: false, reason: 'the key is a point of small order' };
  }
  return { ok: true, key: { scheme: 'ed25519', point, bytes } };
}

// §5.2 with "sm2": 04 || x || y, 130 lowercase hex; x, y < p; on the curve. Cofactor 1, so no
// small-order case.
function decodeSm2Key(hex) {
  if (!/^04[0-9a-f]{128}$/.test(hex)) {
    return { ok: false, reason: 'an SM2 key must be 130 lowercase hex characters starting with 04 (uncompressed point)' };
  }
  const bytes = fromHex(hex);
  const xBytes = bytes.subarray(1, 33);
  const yBytes = bytes.subarray(33, 65);
  const x = bytesToBigIntBE(xBytes);
  const y = bytesToBigIntBE(yBytes);
  const { p, a, b } = SM2_PARAMS;
  if (x >= p || y >= p) return { ok: false, reason: 'a coordinate of the SM2 key is not less than p' };
  if ((y * y - (x * x * x + a * x + b)) % p !== 0n) {
    return { ok: false, reason: 'the SM2 key is not a point of the SM2 curve' };
  }
  const point = sm2Point.fromAffine({ x, y });
  point.assertValidity(); // the library's own check agrees, or this throws (a bug, not a verdict)
  return { ok: true, key: { scheme: 'sm2', point, bytes, za: sm2Za(xBytes, yBytes) } };
}

/**
 * §9.3.2 step 2: Z_A = SM3(ENTL_A || ID_A || a || b || x_G || y_G || x_A || y_A), 210 bytes of
 * input. It depends only on the key, so it is computed once, when the key is decoded.
 */
export function sm2Za(xBytes, yBytes) {
  const { a, b, Gx, Gy } = SM2_PARAMS;
  const entl = Uint8Array.of(0x00, 0x80); // 128 bits, big-endian
  return sm3(concatBytes(
    entl, SM2_DISTINGUISHING_ID,
    bigIntToBytesBE(a, 32), bigIntToBytesBE(b, 32), bigIntToBytesBE(Gx, 32), bigIntToBytesBE(Gy, 32),
    xBytes, yBytes,
  ));
}
