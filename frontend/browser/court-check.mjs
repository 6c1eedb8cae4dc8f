// Walks the court's verification page (/verify) in headless Chromium as a clerk would, and prints
// what the Rust end-to-end test (services/veritrace/tests/court_page.rs) checks as ONE JSON object
// on stdout. It judges nothing itself.
//
//   node frontend/browser/court-check.mjs --scenario scenario.json
//
// scenario.json: { "url": base URL, "key": court API key, "registered": file path,
//   "registeredDigest": sha-256 hex of it, "unregistered": file path, "registeredSm3": a file
//   registered by its SM3 digest (optional),
//   "receipts": [{ "name", "path" }] (receipt files to open in the page), "out": directory for
//   screenshots and the certificate's PDF, "timeoutMs": 60000 }
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { axeViolations, launchOrFail } from './chromium.mjs';

function fail(message, code = 1) {
    process.stderr.write(`court-check: ${message.replace(/\x1b\[[0-9;]*m/g, '')}\n`);
    process.exit(code);
}

let scenario;
try {
    const { values } = parseArgs({ options: { scenario: { type: 'string' } } });
    scenario = JSON.parse(readFileSync(values.scenario, 'utf8'));
} catch (e) {
    fail(`--scenario FILE.json is required: ${e.message}`, 2);
}
const timeout = scenario.timeoutMs ?? 60000;
setTimeout(() => fail(`gave up after ${timeout} ms`), timeout + 10000).unref();

const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

const network = [];
const consoleErrors = [];

/** Waits until the verdict box leaves `idle`/`working`; returns what the page concluded. */
async function verdict(page) {
    await page.waitForSelector('#verdict:not([data-verdict=idle]):not([data-verdict=working])', { timeout });
    return page.evaluate(() => {
        const box = document.getElementById('verdict');
        return {
            verdict: box.dataset.verdict,
            code: box.dataset.code ?? null,
            text: box.innerText,
            cards: [...document.querySelectorAll('#results article')].map((card) => ({
                verdict: card.dataset.verdict,
                code: card.dataset.code ?? null,
                text: card.innerText,
                steps: [...card.querySelectorAll('li[data-step]')].map((li) => ({
                    id: li.dataset.step,
                    status: li.dataset.status,
                    text: li.innerText,
                })),
            })),
            certificateReady: document.getElementById('certificate').classList.contains('ready'),
        };
    });
}

/** Resets the verdict so the next wait sees the next outcome, not the last one. */
async function resetVerdict(page) {
    await page.evaluate(() => {
        document.getElementById('verdict').dataset.verdict = 'idle';
    });
}

function pdfFacts(bytes) {
    const text = Buffer.from(bytes).toString('latin1');
    const pages = (text.match(/\/Type\s*\/Page(?![A-Za-z])/g) || []).length;
    const box = /\/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]/.exec(text);
    return { pages, width: box ? Number(box[1]) : null, height: box ? Number(box[2]) : null };
}

const browser = await launchOrFail(timeout, fail);

try {
    const context = await browser.newContext({ viewport: DESKTOP });
    const page = await context.newPage();
    page.setDefaultTimeout(timeout);
    page.on('request', (request) => {
        const body = request.postDataBuffer();
        network.push({
            method: request.method(),
            url: request.url(),
            headers: request.headers(),
            body: body ? body.toString('hex') : null,
        });
    });
    page.on('console', (message) => {
        if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(`uncaught: ${error.message}`));

    const response = await page.goto(`${scenario.url}/verify`, { waitUntil: 'load' });
    const status = response?.status() ?? null;
    const lang = await page.evaluate(() => document.documentElement.lang);

    // 1. The registered file, dropped on the page (a drop event carrying the file, as a
    // desktop's drag and drop delivers it; the bytes reach the page through the browser, not
    // the network).
    await page.fill('#api-key', scenario.key);
    const dropped = await page.evaluateHandle(({ name, bytes }) => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([new Uint8Array(bytes)], name));
        return transfer;
    }, { name: basename(scenario.registered), bytes: [...readFileSync(scenario.registered)] });
    await page.dispatchEvent('#dropzone', 'dragover', { dataTransfer: dropped });
    await page.dispatchEvent('#dropzone', 'drop', { dataTransfer: dropped });
    const registered = await verdict(page);
    await page.screenshot({ path: join(scenario.out, 'court-verified-desktop.png'), fullPage: true });
    const certificate = await page.evaluate(() => {
        const img = document.getElementById('certificate-qr');
        return {
            qrSrc: img.getAttribute('src'),
            qrLoaded: img.complete && img.naturalWidth > 0,
            link: document.getElementById('certificate-link').textContent,
            text: document.getElementById('certificate').innerText,
        };
    });
    const violationsVerified = await axeViolations(page);

    // The certificate, printed: A4, one page.
    await page.emulateMedia({ media: 'print' });
    const pdf = await page.pdf({ format: 'A4', printBackground: true, preferCSSPageSize: true });
    writeFileSync(join(scenario.out, 'evidence-certificate.pdf'), pdf);
    const printed = pdfFacts(pdf);
    // What the printout looks like, for a person to look at beside the PDF.
    await page.screenshot({ path: join(scenario.out, 'evidence-certificate-print.png'), fullPage: true });
    await page.emulateMedia({ media: 'screen' });

    // The same page on a phone.
    await page.setViewportSize(PHONE);
    const phone = await page.evaluate(() => ({
        viewportWidth: document.documentElement.clientWidth,
        scrollWidth: document.documentElement.scrollWidth,
    }));
    await page.screenshot({ path: join(scenario.out, 'court-verified-390x844.png'), fullPage: true });
    await page.setViewportSize(DESKTOP);

    // 2. The digest typed in, with the keyboard alone.
    await page.focus('#digest');
    await page.keyboard.type(scenario.registeredDigest);
    await resetVerdict(page);
    await page.keyboard.press('Tab'); // the algorithm (sha-256 is the first)
    await page.keyboard.press('Tab'); // the button
    const focused = await page.evaluate(() => document.activeElement?.id ?? null);
    await page.keyboard.press('Enter');
    const byKeyboard = await verdict(page);

    // 3. A file nobody registered.
    await resetVerdict(page);
    await page.setInputFiles('#file', scenario.unregistered);
    const unregistered = await verdict(page);

    // 3b. A file registered by another algorithm (scenario.registeredSm3), if given.
    let registeredSm3 = null;
    if (scenario.registeredSm3) {
        await resetVerdict(page);
        await page.setInputFiles('#file', scenario.registeredSm3);
        registeredSm3 = await verdict(page);
    }
    const violationsUnregistered = await axeViolations(page);

    // 4. Receipt files opened in the page, each verified here.
    const receipts = [];
    for (const { name, path } of scenario.receipts) {
        await resetVerdict(page);
        await page.setInputFiles('#receipt-file', path);
        receipts.push({ name, ...(await verdict(page)) });
    }
    const violationsFailed = await axeViolations(page);
    await page.screenshot({ path: join(scenario.out, 'court-failed-desktop.png'), fullPage: true });

    process.stdout.write(JSON.stringify({
        status,
        lang,
        registered,
        certificate,
        printed,
        phone,
        focusedBeforeEnter: focused,
        byKeyboard,
        unregistered,
        registeredSm3,
        receipts,
        accessibility: { verified: violationsVerified, unregistered: violationsUnregistered, failed: violationsFailed },
        network,
        consoleErrors,
    }) + '\n');
} catch (e) {
    await browser.close().catch(() => {});
    fail(e.message);
}
await browser.close();
