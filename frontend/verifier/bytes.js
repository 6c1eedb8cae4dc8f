// Byte helpers shared by the verifier: hex, UTF-8, concatenation, comparison, u64be.
// Browser-safe: only Uint8Array, TextEncoder and BigInt.

const utf8Encoder = new TextEncoder();

/** UTF-8 bytes of a well-formed string (the strict parser never yields lone surrogates). */
export function utf8(text) {
  return utf8Encoder.encode(text);
}

/** Lowercase hex of bytes (docs/receipts.md §3: "Hex" means lowercase). */
export function toHex(bytes) {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** Bytes of a hex string already known to match /^([0-9a-fA-F]{2})*$/. */
export function fromHex(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** True when `text` is exactly `2 * byteLength` lowercase hex characters. */
export function isLowerHex(text, byteLength) {
  return typeof text === 'string' && text.length === 2 * byteLength && /^[0-9a-f]*$/.test(text);
}

export function concatBytes(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Byte-for-byte equality. Digests here are public, so no constant-time compare is needed. */
export function bytesEqual(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** u64be(n) of docs/receipts.md §3: 8 bytes, big-endian. `n` is a BigInt in 0 … 2^64 − 1. */
export function u64be(n) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, n, false);
  return out;
}

/** Big-endian bytes → BigInt (SM2 integers, §9.3.2). */
export function bytesToBigIntBE(bytes) {
  return bytes.length === 0 ? 0n : BigInt('0x' + toHex(bytes));
}

/** Little-endian bytes → BigInt (Ed25519 scalars, §9.3.1). */
export function bytesToBigIntLE(bytes) {
  return bytesToBigIntBE(Uint8Array.from(bytes).reverse());
}

/** BigInt → `length` big-endian bytes (SM2 curve parameters are hashed as 32 bytes each). */
export function bigIntToBytesBE(n, length) {
  return fromHex(n.toString(16).padStart(2 * length, '0'));
}
