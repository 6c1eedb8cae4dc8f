// The court's verification page (/verify). The evidence file is read and hashed in this browser
// and never sent: only its digests go to the server, to look the registration up. The
// registration's receipt is verified here, step by step, by the verifier written from
// docs/receipts.md (frontend/verifier), against the genesis the court chooses.

import { checkDocument, createDocumentHasher, parseGenesis, verifyReceipt } from '/assets/verifier/verify.js';

const ALGORITHMS = ['sha-256', 'sha3-256', 'sha-512', 'sha3-512', 'sm3'];
const CHUNK = 4 * 1024 * 1024;
const KEY_STORAGE = 'veritrace-court-key';
const $ = (id) => document.getElementById(id);

const state = {
  genesis: null, // { parsed, source }
  lastRun: null, // re-runs the last verification when the genesis changes
};

// ---- the genesis --------------------------------------------------------------------------

function useGenesis(bytes, source) {
  const parsed = parseGenesis(bytes);
  if (!parsed.ok) {
    $('genesis-source').textContent = `${source} is not a valid genesis document (genesis): ${parsed.message}`;
    state.genesis = { parsed, source };
    return;
  }
  const g = parsed.genesis;
  state.genesis = { parsed, source };
  $('genesis-source').textContent =
    `${source}: chain ${g.chain_id} (${g.hash_alg}, ${g.signature_alg}), ${g.validator_set.validators.length} validator(s), genesis hash ${g.genesis_hash}.`;
}

function operatorGenesis() {
  const text = $('operator-genesis').textContent.trim();
  if (text === 'null' || text === '') {
    $('genesis-source').textContent = 'This server publishes no genesis: choose the consortium\'s genesis file below.';
    return;
  }
  useGenesis(text, 'The genesis this server publishes');
}

// ---- hashing the file, here -----------------------------------------------------------------

async function hashFile(file) {
  const hashers = ALGORITHMS.map((a) => [a, createDocumentHasher(a)]);
  for (let offset = 0; offset < file.size || offset === 0; offset += CHUNK) {
    const chunk = new Uint8Array(await file.slice(offset, offset + CHUNK).arrayBuffer());
    for (const [, h] of hashers) h.update(chunk);
    if (file.size > CHUNK) {
      setVerdict('working', `Hashing ${file.name} in this browser…`, `${Math.min(100, Math.round(((offset + CHUNK) / file.size) * 100))} %`);
    }
    if (file.size === 0) break;
  }
  return hashers.map(([algorithm, h]) => ({ algorithm, digest: h.digestHex() }));
}

// ---- talking to the server: digests only ----------------------------------------------------

function apiKey() {
  const key = $('api-key').value.trim();
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  return key;
}

async function getJson(path, key) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${key}`, Accept: 'application/json' } });
  const text = await response.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  return { status: response.status, body, text };
}

/** "Name (organisation id)", as far as this key may read the organisation's name. */
async function registrantOf(organisationId, key, names) {
  if (!names.has(organisationId)) {
    const { status, body } = await getJson(`/organisations/${encodeURIComponent(organisationId)}`, key);
    names.set(organisationId, status === 200 && body && body.name ? body.name : null);
  }
  const name = names.get(organisationId);
  return name ? `${name} (organisation ${organisationId})` : `organisation ${organisationId}`;
}

async function findRegistrations(digests, key) {
  const found = new Map();
  for (const { algorithm, digest } of digests) {
    const query = new URLSearchParams({ digest, algorithm });
    const { status, body } = await getJson(`/evidence?${query}`, key);
    if (status === 401) throw new Error('The API key was refused (401). Check the key and try again.');
    if (status !== 200) throw new Error(`The lookup failed (${status}): ${body && body.detail ? body.detail : 'no detail'}`);
    for (const item of body.items) found.set(item.evidence_id, { registration: item, digest: { algorithm, digest } });
  }
  return [...found.values()];
}

// ---- showing results -------------------------------------------------------------------------

function setVerdict(verdict, headline, detail = '', code = '') {
  const box = $('verdict');
  box.dataset.verdict = verdict;
  if (code) box.dataset.code = code;
  else delete box.dataset.code;
  box.querySelector('strong').textContent = headline;
  $('verdict-detail').textContent = detail;
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes)) {
    if (k.startsWith('data-')) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children) node.append(child);
  return node;
}

function facts(rows) {
  const dl = element('dl', { className: 'facts' });
  for (const [term, value] of rows) {
    if (value === undefined || value === null || value === '') continue;
    dl.append(element('dt', {}, term), element('dd', {}, String(value)));
  }
  return dl;
}

const STATUS_WORDS = { pass: '✓ Passed', fail: '✗ Failed', 'not-run': '– Not run' };

function stepList(steps) {
  const ol = element('ol', { className: 'steps' });
  for (const s of steps) {
    ol.append(element('li', { 'data-step': s.id, 'data-status': s.status },
      element('span', { className: 'status' }, STATUS_WORDS[s.status] || s.status),
      element('span', { className: 'title' }, s.title),
      element('span', { className: 'detail' }, s.detail || '')));
  }
  return ol;
}

function organisationOf(validatorName) {
  const g = state.genesis && state.genesis.parsed.ok ? state.genesis.parsed.genesis : null;
  const v = g ? g.validator_set.validators.find((x) => x.name === validatorName) : null;
  return v ? `${validatorName} (${v.organisation})` : validatorName;
}

// ---- verification -----------------------------------------------------------------------------

/** Verifies receipt bytes here and, if a file digest is known, checks the file against the event. */
function verifyHere(receiptBytes, fileDigest) {
  const outcome = verifyReceipt(receiptBytes, state.genesis ? state.genesis.parsed : null);
  const steps = outcome.steps.slice();
  let { ok, code, message } = outcome;
  if (ok && fileDigest) {
    const doc = checkDocument(outcome.receipt.event, { digestHex: fileDigest.digest, algorithm: fileDigest.algorithm });
    steps.push({ id: 'document', title: 'Your file is the registered one', status: doc.ok ? 'pass' : 'fail', detail: doc.message });
    if (!doc.ok) ({ ok, code, message } = { ok: false, code: doc.code, message: doc.message });
  }
  return { ...outcome, ok, code, message, steps };
}

function registrationCard(title, registration, verification) {
  const card = element('article', { className: 'card', 'data-verdict': verification.ok ? 'verified' : 'failed' });
  if (verification.code) card.dataset.code = verification.code;
  card.append(element('h3', {}, title));
  if (registration) {
    card.append(facts([
      ['Title', registration.title],
      ['Registered by', registration.registrant],
      ['Registered at', registration.registered_at],
      ['Occurred at', registration.occurred_at],
      ['Case', registration.case_reference],
      ['File name', registration.file_name],
      ['Status', registration.status],
      [`${registration.content_hash.algorithm} digest`, registration.content_hash.digest],
    ]));
  }
  const r = verification.result;
  if (r) {
    card.append(facts([
      ['Block', `height ${r.height}, ${r.block_time}`],
      ['Block hash', r.block_hash],
      ['Batch root', r.batch_root],
      ['Attested by', `${r.signers.map(organisationOf).join(', ')} — ${r.signed_power} of ${r.total_power} voting power`],
      ['Event', `${r.event_type} ${r.event_id}`],
    ]));
  }
  card.append(element('h4', {}, 'Verification in this browser'), stepList(verification.steps));
  return card;
}

function showCertificate(registration, verification, fileDigest, receiptBytes) {
  const r = verification.result;
  const g = state.genesis.parsed.genesis;
  const link = `${location.origin}/verify#${fileDigest.algorithm}:${fileDigest.digest}`;
  $('certificate-summary').textContent =
    `The file with the ${fileDigest.algorithm} digest below was registered on the consortium chain ${r.chain_id} and is anchored in block ${r.height}, attested by validators holding ${r.signed_power} of ${r.total_power} voting power. This browser verified the receipt against the genesis document ${g.genesis_hash} (${state.genesis.source.toLowerCase()}) on ${new Date().toISOString()}: every step of the verification passed, and the file's digest is the one the registration attests.`;
  const list = $('certificate-facts');
  list.replaceChildren(...facts([
    ['Digest', `${fileDigest.digest}`],
    ['Algorithm', fileDigest.algorithm],
    ['Title', registration && registration.title],
    ['File name', registration && registration.file_name],
    ['Case', registration && registration.case_reference],
    ['Registrant', registration && registration.registrant],
    ['Registered at', registration && registration.registered_at],
    ['Evidence id', registration && registration.evidence_id],
    ['Event id', r.event_id],
    ['Block height', String(r.height)],
    ['Block time', r.block_time],
    ['Block hash', r.block_hash],
    ['Batch root', r.batch_root],
    ['Attested by', r.signers.map(organisationOf).join(', ')],
    ['Chain', `${r.chain_id}, genesis ${g.genesis_hash}`],
  ]).children);
  const qr = new URLSearchParams({ algorithm: fileDigest.algorithm, digest: fileDigest.digest });
  $('certificate-qr').src = `/verify/qr.svg?${qr}`;
  $('certificate-link').textContent = link;
  $('certificate-how').textContent =
    'To check this certificate, open the link or scan the code, or verify the receipt offline: veritrace verify RECEIPT.json --genesis genesis.json --file FILE.';
  const download = $('receipt-download');
  download.href = URL.createObjectURL(new Blob([receiptBytes], { type: 'application/json' }));
  download.download = `receipt-${r.event_id}.json`;
  $('certificate').classList.add('ready');
}

function summarise(cards) {
  const failed = cards.find((c) => !c.verification.ok);
  if (failed) {
    const v = failed.verification;
    if (v.code === 'pending') {
      setVerdict('pending', 'Registered, not yet anchored: the receipt proves nothing yet.', `${v.message} Check again in a moment.`, v.code);
    } else if (v.code === 'unavailable') {
      setVerdict('error', 'The receipt could not be fetched, so nothing was verified.', v.message, v.code);
    } else {
      setVerdict('failed', `Not verified (${v.code}).`, v.message, v.code);
    }
  } else {
    const n = cards.length;
    setVerdict('verified', n === 1 ? 'Verified: the registration is anchored and every check passed.' : `Verified: all ${n} registrations are anchored and every check passed.`,
      cards.map((c) => c.verification.message).join(' '));
  }
  $('verdict').focus();
}

// ---- the flows ---------------------------------------------------------------------------------

async function lookUpAndVerify(digests) {
  $('results').replaceChildren();
  $('certificate').classList.remove('ready');
  const key = apiKey();
  if (!key) {
    setVerdict('error', 'An API key is needed to look the registration up.', 'Enter your court\'s API key above; the file itself is never sent.');
    return;
  }
  if (!state.genesis || !state.genesis.parsed.ok) {
    setVerdict('error', 'No valid genesis document to verify against.', 'Choose the consortium\'s genesis file above.', 'genesis');
    return;
  }
  setVerdict('working', 'Looking the registration up…', 'Only the digests are sent.');
  let found;
  try {
    found = await findRegistrations(digests, key);
  } catch (e) {
    setVerdict('error', 'The lookup failed.', e.message);
    return;
  }
  if (found.length === 0) {
    const shown = digests.map((d) => `${d.algorithm} ${d.digest}`).join('; ');
    setVerdict('not-registered', 'Not registered: no registration of this file is visible to this key.', `Looked up by ${shown}.`);
    $('verdict').focus();
    return;
  }
  const cards = [];
  const names = new Map();
  for (const { registration, digest } of found) {
    registration.registrant = await registrantOf(registration.organisation, key, names);
    const { status, text, body } = await getJson(`/evidence/${registration.evidence_id}/receipt`, key);
    let verification;
    let bytes = text;
    if (status !== 200) {
      const why = (body && body.detail) || `the server answered ${status}`;
      verification = { ok: false, code: 'unavailable', message: `The receipt could not be fetched: ${why}`, steps: [], result: null };
      bytes = null;
    } else {
      verification = verifyHere(text, digest);
    }
    cards.push({ registration, verification, digest, bytes });
    $('results').append(registrationCard(`Registration ${registration.evidence_id}`, registration, verification));
  }
  summarise(cards);
  const first = cards.find((c) => c.verification.ok);
  if (first && cards.every((c) => c.verification.ok)) showCertificate(first.registration, first.verification, first.digest, first.bytes);
}

async function onEvidenceFile(file) {
  if (!file) return;
  setVerdict('working', `Hashing ${file.name} in this browser…`, 'The file is not sent anywhere.');
  const digests = await hashFile(file);
  $('digests').textContent = digests.map((d) => `${d.algorithm}: ${d.digest}`).join(' · ');
  state.lastRun = () => lookUpAndVerify(digests);
  await state.lastRun();
}

async function onDigest() {
  const algorithm = $('algorithm').value;
  const digest = $('digest').value.trim().toLowerCase();
  const want = algorithm.endsWith('512') ? 128 : 64;
  if (!new RegExp(`^[0-9a-f]{${want}}$`).test(digest)) {
    setVerdict('error', 'That is not a digest.', `A ${algorithm} digest is ${want} hexadecimal characters.`, 'bad-digest');
    $('digest').setAttribute('aria-invalid', 'true');
    return;
  }
  $('digest').removeAttribute('aria-invalid');
  state.lastRun = () => lookUpAndVerify([{ algorithm, digest }]);
  await state.lastRun();
}

async function onReceiptFile(file) {
  if (!file) return;
  const bytes = new Uint8Array(await file.arrayBuffer());
  state.lastRun = async () => {
    $('results').replaceChildren();
    $('certificate').classList.remove('ready');
    const verification = verifyHere(bytes, null);
    $('results').append(registrationCard(`Receipt file ${file.name}`, null, verification));
    summarise([{ verification }]);
  };
  await state.lastRun();
}

// ---- wiring ------------------------------------------------------------------------------------

function wire() {
  $('file').addEventListener('change', (e) => onEvidenceFile(e.target.files[0]));
  $('receipt-file').addEventListener('change', (e) => onReceiptFile(e.target.files[0]));
  $('lookup').addEventListener('click', onDigest);
  $('print').addEventListener('click', () => window.print());
  $('genesis-file').addEventListener('change', async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    useGenesis(new Uint8Array(await file.arrayBuffer()), `The genesis file ${file.name}`);
    if (state.lastRun) await state.lastRun();
  });
  const zone = $('dropzone');
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    onEvidenceFile(e.dataTransfer.files[0]);
  });
  $('api-key').value = sessionStorage.getItem(KEY_STORAGE) || '';
}

// A certificate's link: /verify#<algorithm>:<digest> fills the digest in, and looks it up when
// this tab already holds a key.
function fromLink() {
  const m = /^#(sha-256|sha3-256|sha-512|sha3-512|sm3):([0-9a-fA-F]+)$/.exec(location.hash);
  if (!m) return;
  $('algorithm').value = m[1];
  $('digest').value = m[2];
  if ($('api-key').value) onDigest();
}

wire();
operatorGenesis();
fromLink();
