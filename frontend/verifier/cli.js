#!/usr/bin/env node
// Command line: verify a receipt against a genesis document, offline.
//
//   node frontend/verifier/cli.js RECEIPT GENESIS [--json] [--file FILE | --digest HEX]
//
// Exit codes: 0 verified; 1 not verified (the first line of stderr is
// "NOT VERIFIED (<code>): <message>"); 2 usage error, unreadable file or internal error.
// --json prints the whole result object of verifyReceipt to stdout (u64 values as JSON numbers).
// --file / --digest also check a document against the event (§11) once the receipt verified.

import { readFileSync } from 'node:fs';
import { checkDocument, parseGenesis, verifyReceipt } from './verify.js';

const USAGE = 'usage: node cli.js RECEIPT GENESIS [--json] [--file FILE | --digest HEX]';

function main(argv) {
  const args = parseArgs(argv);
  if (args.error) return fatal(args.error);
  const receiptBytes = readInput(args.receipt, 'receipt');
  const genesisBytes = readInput(args.genesis, 'genesis');
  const documentBytes = args.file === undefined ? undefined : readInput(args.file, 'document');
  if ([receiptBytes, genesisBytes, documentBytes].includes(null)) return 2;

  const outcome = verifyReceipt(receiptBytes, parseGenesis(genesisBytes));
  if (outcome.ok && (documentBytes !== undefined || args.digest !== undefined)) {
    const doc = checkDocument(outcome.receipt.event,
      documentBytes !== undefined ? { bytes: documentBytes } : { digestHex: args.digest });
    outcome.document = doc;
    if (!doc.ok) Object.assign(outcome, { ok: false, code: doc.code, message: doc.message });
  }

  if (args.json) process.stdout.write(`${toJson(outcome)}\n`);
  if (outcome.code === 'internal-error') {
    process.stderr.write(`error: ${outcome.message}\n`);
    return 2;
  }
  if (!outcome.ok) {
    process.stderr.write(`NOT VERIFIED (${outcome.code}): ${outcome.message}\n`);
    for (const step of outcome.steps) if (step.status === 'fail') process.stderr.write(`  failed at step ${step.number}, ${step.title}\n`);
    return 1;
  }
  if (!args.json) process.stdout.write(summary(outcome));
  return 0;
}

function parseArgs(argv) {
  const args = { json: false };
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') args.json = true;
    else if (a === '--file' || a === '--digest') {
      if (i + 1 >= argv.length) return { error: `${a} needs a value` };
      args[a.slice(2)] = argv[++i];
    } else if (a === '-h' || a === '--help') return { error: USAGE };
    else if (a.startsWith('--')) return { error: `unknown option ${a}` };
    else positional.push(a);
  }
  if (positional.length !== 2) return { error: USAGE };
  if (args.file !== undefined && args.digest !== undefined) return { error: 'give --file or --digest, not both' };
  [args.receipt, args.genesis] = positional;
  return args;
}

function readInput(path, what) {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    process.stderr.write(`error: cannot read the ${what} file ${path}: ${e.message}\n`);
    return null;
  }
}

function fatal(message) {
  process.stderr.write(`error: ${message}\n`);
  return 2;
}

function summary({ result, steps, document }) {
  const lines = [
    'VERIFIED',
    `  event         ${result.event_id} (${result.event_type})`,
    `  event digest  ${result.event_digest}`,
    `  existed by    ${result.block_time} (block time, attested by the validators)`,
    `  block         ${result.height} of chain ${result.chain_id}, hash ${result.block_hash}`,
    `  batch root    ${result.batch_root}`,
    `  signers       ${result.signers.join(', ')} (power ${result.signed_power} of ${result.total_power})`,
  ];
  if (document) lines.push(`  document      ${document.message}`);
  lines.push('', ...steps.map((s) => `  ${String(s.number).padStart(2)}. ${s.title}: ${s.status}`));
  return `${lines.join('\n')}\n`;
}

// JSON, indented, with BigInt values written as exact JSON numbers. Written out rather than
// done with a JSON.stringify replacer and a marker string, which a string inside the event
// could imitate.
function toJson(value, indent = '') {
  if (typeof value === 'bigint') return value.toString();
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => inner + toJson(v, inner)).join(',\n')}\n${indent}]`;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${toJson(v, inner)}`).join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

process.exitCode = main(process.argv.slice(2));
