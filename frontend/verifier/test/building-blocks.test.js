// Known-answer tests of the building blocks (docs/receipts.md §14) and the block time rule (§9.5).
// Run: node --test frontend/verifier/test/

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sha256, sha3_256, sm3 } from '../../vendor/crypto.js';
import { fromHex, toHex, utf8 } from '../bytes.js';
import { canonicalize } from '../jcs.js';
import { leafHash, treeHead, verifyInclusion } from '../merkle.js';
import { approvalMessage, attestationMessage } from '../messages.js';
import { isBlockTime } from '../block-time.js';
import { parseStrictJson } from '../strict-json.js';

test('§14 hash functions', () => {
  assert.equal(toHex(sha3_256(new Uint8Array())), 'a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a');
  assert.equal(toHex(sha256(utf8('abc'))), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(toHex(sm3(utf8('abc'))), '66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0');
  assert.equal(toHex(sm3(utf8('abcd'.repeat(16)))), 'debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732');
});

test('§14 JCS example', () => {
  const value = parseStrictJson('{"b":[1e21,0.000001,-0.0,1.5],"a":"€","\\r":1,"1":true}');
  assert.equal(canonicalize(value), '{"\\r":1,"1":true,"a":"€","b":[1e+21,0.000001,0,1.5]}');
});

test('JCS string escaping is JSON.stringify\'s (RFC 8785 §3.2.2.2)', () => {
  let all = '';
  for (let c = 0; c < 0x80; c++) all += String.fromCharCode(c);
  all += '\u2028\u2029\u00e9\ud83d\ude00\u007f';
  assert.equal(canonicalize(all), JSON.stringify(all));
});

test('JCS numbers are ECMAScript Number::toString', () => {
  for (const [text, want] of [['1.0', '1'], ['1e0', '1'], ['-0', '0'], ['5e-1', '0.5'], ['1e21', '1e+21'],
    ['1e-7', '1e-7'], ['123456789012345678901234567890', '1.2345678901234568e+29'], ['9007199254740993', '9007199254740992'],
    ['0.1', '0.1'], ['1e-400', '0']]) {
    assert.equal(canonicalize(parseStrictJson(text)), want, text);
  }
});

const CT_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(fromHex);
const HEADS = {
  'sha-256': [sha256, ['e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', 'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125', 'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7', '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4', '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef', 'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c', '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328']],
  'sha3-256': [sha3_256, ['a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a', '5d53469f20fef4f8eab52b88044ede69c77a6a68a60728609fc4a65ff531e7d0', '00aa2729e7518d75a0bddbc27a81792cba8eef7d1f4776db825ac648d53ff899', '1fb033ea975c1b122f83bab69ac3d599e22022483e6d59d8483664f4468a12e7', '989723635d78295ffead0c3d2cdc1124d7005a02f1fcb5e0738d27dd121dda7b', 'b68ad310ac9dac7dbb4eed8f461feef36a300d5b8c069b9a147d7fb42e119371', 'b41b1d6937a1dc9a427a59f86a243017ca22ca52e617319a22d333d668086457', '16e8656d265de9fb0275341f3813e0851caecd33653df1597f0cd39ce40a4564', 'da799b626ea73f9f5e404ef56ddac189d7f8a4c00b5c317b6ed69463a441ae3f']],
  sm3: [sm3, ['1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b', '2daef60e7a0b8f5e024c81cd2ab3109f2b4f155cf83adeb2ae5532f74a157fdf', '0b990fe0c7ad70f1bf1a1262f2c7908ea48146b14253a6db99f2917ab1f5cc4d', '209ec96a210d662a964772680e8544d18cab7b88ffec3e00962220349b56ea56', '28e4e307ef6d2d0c62d84b11ef96e835efe490f35b93c8f024ecfe38c8dd4377', 'bb10c996aeebbcdc69be3715fc847344de77442d37a5ab8213da9f41785b103b', '8723c1ab1f82ddfba4a3733ac0c80d936d9f4c208c7dbc8cc81ca9fff8584f66', 'bd36c22a1ac6ff4308e0c3cc1a85bf0ffa30538ec60a55c70413ab15d45db4d2', 'bc48ba7a709184b5f2a631e1adeb8dc2a0d4c018c1d6cc89b5664fe154c93b38']],
};

test('§14 Merkle tree heads, n = 0 … 8, all three hashes', () => {
  for (const [name, [H, heads]] of Object.entries(HEADS)) {
    heads.forEach((want, n) => assert.equal(toHex(treeHead(H, CT_LEAVES.slice(0, n))), want, `${name} n=${n}`));
  }
});

test('§14 inclusion proofs, and the failure reasons of §8.4', () => {
  const cases = [
    [sha256, ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7'], HEADS['sha-256'][1]],
    [sm3, ['a798bfdb4164a6c7b41a6faecc5c3155cf04d38929dcbd4fe21dea29071aac64', '155f6ed4ccfa83510c9416c99b48f41aa5b12e443546bee1b501a7b281e5132a', '28e4e307ef6d2d0c62d84b11ef96e835efe490f35b93c8f024ecfe38c8dd4377'], HEADS.sm3[1]],
  ];
  for (const [H, path, heads] of cases) {
    const leaf = leafHash(H, fromHex('40414243'));
    const p = path.map(fromHex);
    const root = fromHex(heads[8]);
    assert.deepEqual(verifyInclusion(H, 5n, 8n, leaf, p, root), { ok: true });
    assert.equal(verifyInclusion(H, 4n, 8n, leaf, p, root).reason, 'RootMismatch');
    assert.equal(verifyInclusion(H, 8n, 8n, leaf, p, root).reason, 'IndexOutOfRange');
    assert.equal(verifyInclusion(H, 0n, 0n, leaf, [], root).reason, 'IndexOutOfRange');
    assert.equal(verifyInclusion(H, 5n, 8n, leaf, p.slice(0, 2), root).reason, 'PathTooShort');
    assert.equal(verifyInclusion(H, 5n, 8n, leaf, [...p, p[0]], root).reason, 'PathTooLong');
    // Leaf 2 of 3 has a one-hash path leading to the n = 3 root.
    assert.deepEqual(verifyInclusion(H, 2n, 3n, leafHash(H, fromHex('10')), [fromHex(heads[2])], fromHex(heads[3])), { ok: true });
  }
  // Every leaf of every tree up to 20 leaves verifies with the path the tree gives.
  for (let n = 1; n <= 20; n++) {
    const items = Array.from({ length: n }, (_, i) => Uint8Array.of(i));
    const root = treeHead(sha256, items);
    for (let i = 0; i < n; i++) {
      assert.deepEqual(verifyInclusion(sha256, BigInt(i), BigInt(n), leafHash(sha256, items[i]), auditPath(sha256, items, i), root), { ok: true }, `n=${n} i=${i}`);
    }
  }
});

// RFC 9162 §2.1.3.1 PATH(m, D[n]), to produce paths for the exhaustive check above.
function auditPath(H, items, m) {
  if (items.length <= 1) return [];
  let k = 1;
  while (k * 2 < items.length) k *= 2;
  return m < k
    ? [...auditPath(H, items.slice(0, k), m), treeHead(H, items.slice(k))]
    : [...auditPath(H, items.slice(k), m - k), treeHead(H, items.slice(0, k))];
}

test('§14 attestation and approval messages', () => {
  const seven = new Uint8Array(32).fill(7);
  const eight = new Uint8Array(32).fill(8);
  assert.equal(toHex(attestationMessage('c1', 258n, seven)),
    `7665726974726163652f626c6f636b2f7631026331${'0000000000000102'}${'07'.repeat(32)}`);
  assert.equal(attestationMessage('c1', 258n, seven).length, 61);
  assert.equal(toHex(approvalMessage('c1', 258n, seven, eight)),
    `7665726974726163652f76616c696461746f722d7365742d6368616e67652f7631026331${'0000000000000102'}${'07'.repeat(32)}${'08'.repeat(32)}`);
  assert.equal(approvalMessage('c1', 258n, seven, eight).length, 108);
});

test('§9.5 block times', () => {
  for (const ok of ['2026-11-25T09:30:00.123Z', '2024-02-29T23:59:59.999Z', '2000-02-29T00:00:00.000Z', '0000-02-29T00:00:00.000Z', '0000-01-01T00:00:00.000Z', '9999-12-31T23:59:59.999Z']) {
    assert.ok(isBlockTime(ok), ok);
  }
  for (const bad of ['2026-02-29T00:00:00.000Z', '1900-02-29T00:00:00.000Z', '2026-04-31T00:00:00.000Z', '2026-00-10T00:00:00.000Z', '2026-13-10T00:00:00.000Z',
    '2026-01-00T00:00:00.000Z', '2026-01-01T24:00:00.000Z', '2026-01-01T00:60:00.000Z', '2026-12-31T23:59:60.000Z', '2026-01-01t00:00:01.000Z',
    '2026-01-01T00:00:01.000z', '2026-01-01 00:00:01.000Z', '2026-01-01T00:00:01Z', '2026-01-01T00:00:01.000000Z', '2026-01-01T00:00:01.000+00:00',
    '+2026-01-01T00:00:01.000Z', '2026-01-01T00:00:01.00aZ', '２026-01-01T00:00:01.000Z', '']) {
    assert.ok(!isBlockTime(bad), bad);
  }
});
