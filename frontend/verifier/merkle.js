// Merkle trees of docs/receipts.md §8: the RFC 9162 shape with domain-separated leaves and nodes,
// hashed with the chain's H. Indices and sizes are unsigned 64-bit (BigInt here).

import { bytesEqual, concatBytes } from './bytes.js';

const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);

/** §8.1 leaf_hash(data) = H(0x00 || data). */
export function leafHash(H, data) {
  return H(concatBytes(LEAF_PREFIX, data));
}

/** §8.1 node_hash(left, right) = H(0x01 || left || right). */
export function nodeHash(H, left, right) {
  return H(concatBytes(NODE_PREFIX, left, right));
}

/** §8.2 MTH over a list of leaf data items (not used by verification; kept for known answers). */
export function treeHead(H, items) {
  if (items.length === 0) return H(new Uint8Array());
  if (items.length === 1) return leafHash(H, items[0]);
  let k = 1;
  while (k * 2 < items.length) k *= 2; // largest power of two smaller than n
  return nodeHash(H, treeHead(H, items.slice(0, k)), treeHead(H, items.slice(k)));
}

/**
 * §8.4 verify_inclusion (RFC 9162 §2.1.3.2). `leafIndex` and `treeSize` are BigInt, `leaf` is a
 * leaf hash, `path` an array of 32-byte sibling hashes, `root` the expected tree head.
 * Returns { ok: true } or { ok: false, reason } with the spec's reason name.
 */
export function verifyInclusion(H, leafIndex, treeSize, leaf, path, root) {
  if (leafIndex >= treeSize) return { ok: false, reason: 'IndexOutOfRange' }; // includes size 0
  let fn = leafIndex;
  let sn = treeSize - 1n;
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) return { ok: false, reason: 'PathTooLong' };
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(H, p, r);
      if ((fn & 1n) === 0n) {
        // fn is the last node of its level: climb past the levels where it has no sibling.
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = nodeHash(H, r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) return { ok: false, reason: 'PathTooShort' };
  if (!bytesEqual(r, root)) return { ok: false, reason: 'RootMismatch' };
  return { ok: true };
}

/** Plain-English gloss of each failure reason, for the people reading a report. */
export const INCLUSION_REASONS = Object.freeze({
  IndexOutOfRange: 'the leaf index is not smaller than the tree size',
  PathTooLong: 'the path has more hashes than a tree of this size needs',
  PathTooShort: 'the path has fewer hashes than a tree of this size needs',
  RootMismatch: 'the path does not lead to the stated root',
});
