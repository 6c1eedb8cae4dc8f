#!/usr/bin/env node
// Runs every entry of schemas/vectors/manifest.json (docs/receipts.md §13) through this verifier
// and compares the outcome with the entry's `expect` and `code`. An entry with a `document`
// member also checks that file against the receipt's event (§11) once the receipt verifies.
// Prints each disagreement; exits 1 if there is any.
//
//   node frontend/verifier/check-vectors.js [--json] [VECTORS_DIR]
//
// --json prints instead one JSON array, an outcome per entry in manifest order:
// { "code": null | "<failure code>" }, for a test that compares it with another verifier's.

import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkDocument, parseGenesis, verifyReceipt } from './verify.js';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const json = args[0] === '--json';
const vectorsDir = resolve((json ? args[1] : args[0]) ?? join(here, '..', '..', 'schemas', 'vectors'));
const read = (path) => new Uint8Array(readFileSync(join(vectorsDir, path)));
const KNOWN_MEMBERS = new Set(['receipt', 'genesis', 'expect', 'code', 'description', 'document']);

/** Outcome of one manifest entry: { code } with null for verified. */
function runEntry(entry) {
  const genesis = parseGenesis(read(entry.genesis));
  const outcome = verifyReceipt(read(entry.receipt), genesis);
  if (!outcome.ok) return { code: outcome.code, message: outcome.message };
  if (entry.document === undefined) return { code: null };
  const doc = checkDocument(outcome.receipt.event, { bytes: read(entry.document) });
  return doc.ok ? { code: null } : { code: doc.code, message: doc.message };
}

function main() {
  const manifest = JSON.parse(readFileSync(join(vectorsDir, 'manifest.json'), 'utf8'));
  let passed = 0;
  let failed = 0;
  const unknownMembers = new Set();
  const outcomes = [];
  manifest.forEach((entry, i) => {
    Object.keys(entry).filter((k) => !KNOWN_MEMBERS.has(k)).forEach((k) => unknownMembers.add(k));
    const label = `#${i} ${entry.receipt} vs ${entry.genesis}${entry.document ? ` + ${entry.document}` : ''}`;
    let got;
    try {
      got = runEntry(entry);
    } catch (e) {
      got = { code: 'exception', message: e.stack };
    }
    outcomes.push({ code: got.code });
    const expected = entry.expect === 'verified' ? null : entry.code;
    const agree = entry.expect === 'verified' ? got.code === null : got.code !== null && got.code === expected;
    if (agree) {
      passed++;
      return;
    }
    failed++;
    if (json) return;
    console.log(`DISAGREE ${label}: expected ${entry.expect}${expected ? ` (${expected})` : ''}, got ${got.code === null ? 'verified' : `rejected (${got.code})`}`);
    console.log(`  ${entry.description}`);
    if (got.message) console.log(`  ${got.message}`);
  });
  if (json) {
    console.log(JSON.stringify(outcomes));
    return failed === 0 ? 0 : 1;
  }
  if (unknownMembers.size) console.log(`note: manifest members this runner does not know: ${[...unknownMembers].join(', ')}`);
  console.log(`check-vectors: ${manifest.length} entries in ${vectorsDir}`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = main();
