// Tests crypto.js, the bundle build.sh makes: known answers of docs/receipts.md §14 and of the
// standards, incremental hashing equal to one-shot hashing, and SM3 (our own compression
// function) against the independent SM3 of sm-crypto-v2 (a devDependency, never bundled).
// Run by build.sh; exits non-zero on the first disagreement.

import assert from 'node:assert/strict';
import * as c from './crypto.js';

const enc = new TextEncoder();
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const fromHex = (h) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));
let checks = 0;
function eq(actual, expected, what) {
  assert.equal(actual, expected, what);
  checks++;
}

// Known answers (docs/receipts.md §14; FIPS 180-4 / FIPS 202 examples; GB/T 32905-2016).
eq(hex(c.sha3_256(new Uint8Array())), 'a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a', 'SHA3-256("")');
eq(hex(c.sha256(enc.encode('abc'))), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 'SHA-256(abc)');
eq(hex(c.sha512(enc.encode('abc'))), 'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f', 'SHA-512(abc)');
eq(hex(c.sha3_512(enc.encode('abc'))), 'b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0', 'SHA3-512(abc)');
eq(hex(c.sm3(enc.encode('abc'))), '66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0', 'SM3 example 1');
eq(hex(c.sm3(enc.encode('abcd'.repeat(16)))), 'debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732', 'SM3 example 2');

// Incremental = one-shot, for every hasher, with chunks that straddle block boundaries.
const data = Uint8Array.from({ length: 1000 }, (_, i) => (i * 131 + 7) & 0xff);
for (const [name, h] of Object.entries({ sha256: c.sha256, sha512: c.sha512, sha3_256: c.sha3_256, sha3_512: c.sha3_512, sm3: c.sm3 })) {
  for (const step of [1, 7, 63, 64, 65, 200]) {
    const inc = h.create();
    for (let i = 0; i < data.length; i += step) inc.update(data.subarray(i, i + step));
    eq(hex(inc.digest()), hex(h(data)), `${name} incremental, chunks of ${step}`);
  }
}

// SM3 against sm-crypto-v2 on every length 0..300 (one, two and three blocks, padding edges).
let smCrypto = null;
try {
  smCrypto = await import('sm-crypto-v2');
} catch {
  console.log('check.mjs: sm-crypto-v2 not installed; SM3 cross-check skipped');
}
if (smCrypto) {
  for (let len = 0; len <= 300; len++) {
    const m = data.subarray(0, len);
    eq(hex(c.sm3(m)), smCrypto.sm3(m), `SM3 vs sm-crypto-v2, length ${len}`);
  }
}

// Curves: the generators are on their curves and encode as the standards print them.
eq(hex(c.ed25519Point.BASE.toBytes()), '5866666666666666666666666666666666666666666666666666666666666666', 'Ed25519 base point');
c.sm2Point.BASE.assertValidity();
eq(hex(c.sm2Point.BASE.toBytes(false)), '04' + c.SM2_PARAMS.Gx.toString(16) + c.SM2_PARAMS.Gy.toString(16), 'SM2 generator');
// [n]G is the identity on SM2 (n is the order): multiplying by n-1 then adding G gives ZERO.
assert.ok(c.sm2Point.BASE.multiplyUnsafe(c.SM2_PARAMS.n - 1n).add(c.sm2Point.BASE).is0(), 'SM2 order');
checks++;
// The GB/T 32918.5 Annex A public key is on the curve.
c.sm2Point.fromBytes(fromHex('0409f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13')).assertValidity();
checks++;

console.log(`check.mjs: ${checks} passed, 0 failed`);
