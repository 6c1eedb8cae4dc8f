// The signed messages: block attestation (docs/receipts.md §9.2) and validator-set change
// approval (§9.6.1). Signed as they are, never pre-hashed with H.

import { concatBytes, u64be, utf8 } from './bytes.js';

const BLOCK_TAG = utf8('veritrace/block/v1'); // 18 bytes
const CHANGE_TAG = utf8('veritrace/validator-set-change/v1'); // 33 bytes

// u8(len(chain_id)) || chain_id. The genesis rules keep the id ASCII and 1–64 bytes long.
function chainIdField(chainId) {
  const bytes = utf8(chainId);
  if (bytes.length < 1 || bytes.length > 64) throw new RangeError('chain_id must be 1 to 64 bytes');
  return concatBytes(Uint8Array.of(bytes.length), bytes);
}

/** §9.2: "veritrace/block/v1" || u8(len) || chain_id || u64be(height) || block_hash. */
export function attestationMessage(chainId, height, blockHash) {
  return concatBytes(BLOCK_TAG, chainIdField(chainId), u64be(height), blockHash);
}

/** §9.6.1: tag || u8(len) || chain_id || u64be(effective_height) || previous_set_hash || new set hash. */
export function approvalMessage(chainId, effectiveHeight, previousSetHash, newSetHash) {
  return concatBytes(CHANGE_TAG, chainIdField(chainId), u64be(effectiveHeight), previousSetHash, newSetHash);
}
