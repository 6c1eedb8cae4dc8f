// SM3 hash function, GB/T 32905-2016.
//
// noble-hashes has no SM3, so the compression function is written here, on top of noble's
// audited Merkle–Damgård base class (HashMD), which supplies buffering, padding and the
// incremental update()/digest() interface. SM3's padding is SHA-256's (a 1 bit, zeros and the
// 64-bit big-endian bit length in a 64-byte block), so only the compression function is new.
// It is checked against the two examples of the standard and, in check.mjs, against the
// independent SM3 of sm-crypto-v2 on inputs of every length around the block boundaries.

import { HashMD } from '@noble/hashes/_md.js';
import { clean, createHasher } from '@noble/hashes/utils.js';

// Initial value IV (GB/T 32905-2016 §4.1).
const SM3_IV = Uint32Array.from([
  0x7380166f, 0x4914b2b9, 0x172442d7, 0xda8a0600, 0xa96f30bc, 0x163138aa, 0xe38dee4d, 0xb0fb0e4e,
]);

// Round constants T_j (§4.2), already rotated left by j mod 32 as the compression function
// uses them, so the inner loop does one table look-up.
const SM3_T_ROTATED = /* @__PURE__ */ (() => {
  const t = new Uint32Array(64);
  for (let j = 0; j < 64; j++) t[j] = rotl(j < 16 ? 0x79cc4519 : 0x7a879d8a, j % 32);
  return t;
})();

// Message expansion buffers W_0..W_67 (§5.3.2); W'_j = W_j ^ W_{j+4} is computed on the fly.
const SM3_W = /* @__PURE__ */ new Uint32Array(68);

function rotl(x, n) {
  n &= 31;
  return n === 0 ? x >>> 0 : ((x << n) | (x >>> (32 - n))) >>> 0;
}

// Permutations P0 and P1 (§4.4).
const p0 = (x) => x ^ rotl(x, 9) ^ rotl(x, 17);
const p1 = (x) => x ^ rotl(x, 15) ^ rotl(x, 23);

class SM3 extends HashMD {
  A = 0;
  B = 0;
  C = 0;
  D = 0;
  E = 0;
  F = 0;
  G = 0;
  H = 0;

  constructor() {
    // 64-byte blocks, 32-byte digest, 8-byte length field, big-endian words.
    super(64, 32, 8, false);
    this.set(...SM3_IV);
  }

  get() {
    const { A, B, C, D, E, F, G, H } = this;
    return [A, B, C, D, E, F, G, H];
  }

  set(A, B, C, D, E, F, G, H) {
    this.A = A | 0;
    this.B = B | 0;
    this.C = C | 0;
    this.D = D | 0;
    this.E = E | 0;
    this.F = F | 0;
    this.G = G | 0;
    this.H = H | 0;
  }

  _cloneInto(to) {
    to ||= new SM3();
    to.set(...this.get());
    return this._cloneIntoMeta(to);
  }

  // Compression function CF (§5.3.3) of one 64-byte block at `offset` of `view`.
  process(view, offset) {
    const W = SM3_W;
    for (let j = 0; j < 16; j++, offset += 4) W[j] = view.getUint32(offset, false);
    for (let j = 16; j < 68; j++) {
      W[j] = p1(W[j - 16] ^ W[j - 9] ^ rotl(W[j - 3], 15)) ^ rotl(W[j - 13], 7) ^ W[j - 6];
    }
    let { A, B, C, D, E, F, G, H } = this;
    for (let j = 0; j < 64; j++) {
      const a12 = rotl(A, 12);
      const ss1 = rotl((a12 + E + SM3_T_ROTATED[j]) | 0, 7);
      const ss2 = ss1 ^ a12;
      // FF_j and GG_j (§4.3): XOR in the first 16 rounds, majority / choice after.
      const ff = j < 16 ? A ^ B ^ C : (A & B) | (A & C) | (B & C);
      const gg = j < 16 ? E ^ F ^ G : (E & F) | (~E & G);
      const tt1 = (ff + D + ss2 + (W[j] ^ W[j + 4])) | 0;
      const tt2 = (gg + H + ss1 + W[j]) | 0;
      D = C;
      C = rotl(B, 9);
      B = A;
      A = tt1;
      H = G;
      G = rotl(F, 19);
      F = E;
      E = p0(tt2);
    }
    // V(i+1) = ABCDEFGH xor V(i): SM3 chains with XOR, not with addition as SHA-2 does.
    this.set(
      A ^ this.A, B ^ this.B, C ^ this.C, D ^ this.D,
      E ^ this.E, F ^ this.F, G ^ this.G, H ^ this.H,
    );
  }

  roundClean() {
    clean(SM3_W);
  }

  destroy() {
    this.destroyed = true;
    this.set(0, 0, 0, 0, 0, 0, 0, 0);
    clean(this.buffer);
  }
}

/** SM3: `sm3(bytes)` → 32 bytes, or `sm3.create().update(chunk)….digest()`. */
export const sm3 = /* @__PURE__ */ createHasher(() => new SM3());
