// The SM2 recommended curve (GB/T 32918.5-2016), as a noble-curves point type.
//
// noble-curves has no SM2, but its generic short Weierstrass arithmetic (audited) takes any
// curve's parameters. Only the point arithmetic comes from here; the SM2 signature check itself
// (GB/T 32918.2-2016 steps B1–B7, docs/receipts.md §9.3.2) is written out in
// frontend/verifier/signatures.js, step by step, because the spec fixes exactly what it accepts.

import { weierstrass } from '@noble/curves/abstract/weierstrass.js';

/** Curve parameters, hex as printed in docs/receipts.md §9.3.2 and GB/T 32918.5-2016. */
export const SM2_PARAMS = Object.freeze({
  p: 0xfffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffffn,
  a: 0xfffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffcn,
  b: 0x28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93n,
  n: 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n,
  Gx: 0x32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7n,
  Gy: 0xbc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0n,
  h: 1n,
});

/** Point type of the SM2 curve: fromAffine, fromBytes (SEC1), BASE, ZERO, add, multiplyUnsafe… */
export const sm2Point = /* @__PURE__ */ weierstrass(SM2_PARAMS);
