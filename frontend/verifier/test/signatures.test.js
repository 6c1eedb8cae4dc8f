// Signature schemes (docs/receipts.md §9.3): strict Ed25519 and SM2, with signatures made here
// from known secret scalars, the GB/T 32918.5 example, and, when ../vendor/node_modules holds
// it, the independent SM2 of sm-crypto-v2 in both directions.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ed25519Point, sha256, sha512, sm2Point, SM2_PARAMS, sm3 } from '../../vendor/crypto.js';
import { bigIntToBytesBE, bytesToBigIntBE, bytesToBigIntLE, concatBytes, fromHex, toHex, utf8 } from '../bytes.js';
import { decodeValidatorKey, sm2Za } from '../keys.js';
import { ED25519_L, verifySignature } from '../signatures.js';

const L = ED25519_L;
const { n } = SM2_PARAMS;
const le32 = (x) => bigIntToBytesBE(x, 32).reverse();
// Deterministic "random" scalars, so failures reproduce.
const scalar = (label, mod) => (bytesToBigIntBE(sha256(utf8(label))) % (mod - 2n)) + 1n;
const hexOf = (bytes) => toHex(bytes);

function ed25519Key(a) {
  const decoded = decodeValidatorKey('ed25519', hexOf(ed25519Point.BASE.multiply(a).toBytes()));
  assert.ok(decoded.ok);
  return decoded.key;
}

// RFC 8032 signing from a secret scalar `a` and nonce `r`, with R given as bytes so that tests
// can put any point there.
function ed25519Sign(a, key, message, r, rBytes = ed25519Point.BASE.multiply(r).toBytes()) {
  const k = bytesToBigIntLE(sha512(concatBytes(rBytes, key.bytes, message))) % L;
  return concatBytes(rBytes, le32((r + k * a) % L));
}

test('Ed25519: a valid signature verifies, and not for another message', () => {
  const a = scalar('ed-a', L);
  const key = ed25519Key(a);
  const message = utf8('veritrace/block/v1 test');
  const sig = ed25519Sign(a, key, message, scalar('ed-r', L));
  assert.deepEqual(verifySignature(key, hexOf(sig), message), { ok: true });
  assert.equal(verifySignature(key, hexOf(sig), utf8('other')).reason, 'Invalid');
});

test('Ed25519 strict: S ≥ L, small-order R, mixed-torsion R, non-canonical R, malformed text', () => {
  const a = scalar('ed-a2', L);
  const key = ed25519Key(a);
  const message = utf8('m');
  const sig = ed25519Sign(a, key, message, scalar('ed-r2', L));
  // S + L: the same value mod L, a second encoding. Rejected.
  const S = bytesToBigIntLE(sig.subarray(32));
  if (S + L < 2n ** 256n) {
    const high = concatBytes(sig.subarray(0, 32), le32(S + L));
    assert.match(verifySignature(key, hexOf(high), message).detail, /non-canonical S/);
  }
  // R = identity (small order), S = 0: [0]B − [k]A ≠ identity unless A is small order.
  const identity = ed25519Point.ZERO.toBytes();
  assert.match(verifySignature(key, hexOf(concatBytes(identity, new Uint8Array(32))), message).detail, /small order/);
  // R = [r]B + T, T of order 8, S = r + k·a: the cofactored equation accepts it, the
  // cofactorless one of §9.3.1 must not.
  const torsion = ed25519Point.fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a');
  assert.ok(torsion.isSmallOrder() && !torsion.is0());
  const r = scalar('ed-r3', L);
  const mixed = ed25519Point.BASE.multiply(r).add(torsion).toBytes();
  const mixedSig = ed25519Sign(a, key, message, r, mixed);
  assert.equal(verifySignature(key, hexOf(mixedSig), message).reason, 'Invalid');
  // The identity written with y = p + 1 (non-canonical): does not decode strictly.
  const nonCanonical = le32(2n ** 255n - 19n + 1n);
  assert.match(verifySignature(key, hexOf(concatBytes(nonCanonical, new Uint8Array(32))), message).detail, /does not decode/);
  // Text form (§9.3 step 1).
  assert.equal(verifySignature(key, hexOf(sig).toUpperCase(), message).reason, 'Malformed');
  assert.equal(verifySignature(key, hexOf(sig).slice(2), message).reason, 'Malformed');
});

test('Ed25519 keys (§5.2): small order, non-canonical, wrong form', () => {
  assert.equal(decodeValidatorKey('ed25519', '01'.padEnd(64, '0')).ok, false); // identity
  assert.equal(decodeValidatorKey('ed25519', 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a').ok, false);
  assert.equal(decodeValidatorKey('ed25519', toHex(le32(2n ** 255n - 19n + 1n))).ok, false); // y = p + 1
  assert.equal(decodeValidatorKey('ed25519', toHex(le32(2n ** 255n - 19n))).ok, false); // y = p
  const good = hexOf(ed25519Point.BASE.multiply(5n).toBytes());
  assert.equal(decodeValidatorKey('ed25519', good).ok, true);
  assert.equal(decodeValidatorKey('ed25519', good.toUpperCase()).ok, false);
  assert.equal(decodeValidatorKey('ed25519', `04${good}${good}`).ok, false);
});

// GB/T 32918.5-2016 Annex A, as quoted in docs/receipts.md §14.
const ANNEX_KEY = '0409f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13';
const ANNEX_SIG = 'f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa';

test('SM2: the GB/T 32918.5 Annex A example', () => {
  const decoded = decodeValidatorKey('sm2', ANNEX_KEY);
  assert.ok(decoded.ok);
  assert.equal(toHex(decoded.key.za), 'b2e14c5c79c6df5b85f4fe7ed8db7a262b9da7e07ccb0ea9f4747b8ccda8a4f3');
  const message = utf8('message digest');
  assert.equal(toHex(sm3(concatBytes(decoded.key.za, message))), 'f0b43e94ba45accaace692ed534382eb17e6ab5a19ce7b31f4486fdfc0d28640');
  assert.deepEqual(verifySignature(decoded.key, ANNEX_SIG, message), { ok: true });
  assert.equal(verifySignature(decoded.key, ANNEX_SIG, utf8('message digesT')).ok, false);
  // Another identifier gives another Z_A, and the signature no longer verifies.
  const otherId = { ...decoded.key, za: sm3(utf8('another identifier')) };
  assert.equal(verifySignature(otherId, ANNEX_SIG, message).ok, false);
});

// SM2 signing (GB/T 32918.2 §6.1) from a secret d and nonce k.
function sm2Sign(d, key, message, k) {
  const e = bytesToBigIntBE(sm3(concatBytes(key.za, message)));
  const x1 = sm2Point.BASE.multiply(k).toAffine().x;
  const r = (e + x1) % n;
  const inv = modPow(1n + d, n - 2n, n);
  const s = (inv * (((k - r * d) % n) + n)) % n;
  return concatBytes(bigIntToBytesBE(r, 32), bigIntToBytesBE(s, 32));
}

function modPow(b, e, m) {
  let result = 1n;
  for (b %= m; e > 0n; e >>= 1n, b = (b * b) % m) if (e & 1n) result = (result * b) % m;
  return result;
}

function sm2Key(d) {
  const decoded = decodeValidatorKey('sm2', hexOf(sm2Point.BASE.multiply(d).toBytes(false)));
  assert.ok(decoded.ok);
  return decoded.key;
}

test('SM2: B1–B7 accept valid signatures and reject r, s out of range and r + s = n', () => {
  const d = scalar('sm2-d', n);
  const key = sm2Key(d);
  const message = utf8('veritrace/block/v1 sm2');
  const sig = sm2Sign(d, key, message, scalar('sm2-k', n));
  assert.deepEqual(verifySignature(key, hexOf(sig), message), { ok: true });
  assert.equal(verifySignature(key, hexOf(sig), utf8('x')).ok, false);
  const r = bytesToBigIntBE(sig.subarray(0, 32));
  const s = bytesToBigIntBE(sig.subarray(32));
  const enc = (a, b) => hexOf(concatBytes(bigIntToBytesBE(a, 32), bigIntToBytesBE(b, 32)));
  assert.match(verifySignature(key, enc(0n, s), message).detail, /r is not/);
  assert.match(verifySignature(key, enc(n, s), message).detail, /r is not/);
  assert.match(verifySignature(key, enc(r, 0n), message).detail, /s is not/);
  assert.match(verifySignature(key, enc(r, n), message).detail, /s is not/);
  if (r + n < 2n ** 256n) assert.match(verifySignature(key, enc(r + n, s), message).detail, /r is not/);
  if (s + n < 2n ** 256n) assert.match(verifySignature(key, enc(r, s + n), message).detail, /s is not/);
  assert.match(verifySignature(key, enc(r, n - r), message).detail, /t = /);
});

test('SM2 keys (§5.2): compressed, infinity, off curve, coordinate ≥ p', () => {
  const key = hexOf(sm2Point.BASE.multiply(7n).toBytes(false));
  assert.equal(decodeValidatorKey('sm2', key).ok, true);
  assert.equal(decodeValidatorKey('sm2', hexOf(sm2Point.BASE.multiply(7n).toBytes(true))).ok, false);
  assert.equal(decodeValidatorKey('sm2', '00').ok, false);
  assert.equal(decodeValidatorKey('sm2', `${key.slice(0, -1)}${key.endsWith('0') ? '1' : '0'}`).ok, false);
  const p = SM2_PARAMS.p;
  const x = bytesToBigIntBE(fromHex(key.slice(2, 66)));
  // x + p (if it fits 32 bytes) names the same x mod p, and must be refused as ≥ p.
  if (x + p < 2n ** 256n) assert.equal(decodeValidatorKey('sm2', `04${toHex(bigIntToBytesBE(x + p, 32))}${key.slice(66)}`).ok, false);
  assert.equal(decodeValidatorKey('sm2', key.toUpperCase().replace(/^04/, '04')).ok, false);
  assert.equal(decodeValidatorKey('sm2', key.slice(2, 66)).ok, false); // 64-character (Ed25519) form
});

test('SM2 against sm-crypto-v2, both directions (skipped without ../vendor/node_modules)', async (t) => {
  let sm;
  try {
    ({ sm2: sm } = await import('../../vendor/node_modules/sm-crypto-v2/dist/index.mjs'));
  } catch {
    t.skip('sm-crypto-v2 is not installed (run frontend/vendor/build.sh)');
    return;
  }
  for (let i = 0; i < 8; i++) {
    const message = utf8(`message ${i} `.repeat(i + 1));
    // Theirs → ours.
    const pair = sm.generateKeyPairHex();
    const theirKey = decodeValidatorKey('sm2', pair.publicKey);
    assert.ok(theirKey.ok);
    const theirSig = sm.doSignature(message, pair.privateKey, { hash: true, der: false, publicKey: pair.publicKey });
    assert.deepEqual(verifySignature(theirKey.key, theirSig.padStart(128, '0'), message), { ok: true });
    assert.equal(verifySignature(theirKey.key, theirSig.padStart(128, '0'), utf8('tampered')).ok, false);
    // Ours → theirs.
    const d = scalar(`sm2-cross-${i}`, n);
    const key = sm2Key(d);
    const sig = hexOf(sm2Sign(d, key, message, scalar(`sm2-cross-k-${i}`, n)));
    assert.equal(sm.doVerifySignature(message, sig, hexOf(key.bytes), { hash: true, der: false }), true);
    assert.equal(sm.doVerifySignature(utf8('tampered'), sig, hexOf(key.bytes), { hash: true, der: false }), false);
  }
});
