// Opens one page in headless Chromium, the way a phone would, and prints what the Rust end-to-end
// tests check as ONE JSON object on stdout:
//
//   node frontend/browser/open-page.mjs --url URL [--screenshot OUT.png] [--width 390 --height 844]
//                                       [--javascript on|off] [--timeout-ms 30000] [--axe]
//
// A width above 600 opens the page as a desktop browser does, otherwise as a phone. --axe also
// runs axe-core's accessibility checks (WCAG 2.1 A and AA, best practices) on the page, in a
// second, JavaScript-enabled context (axe is a script), and reports the violations.
//
// Exit 0 once the page has loaded, whatever its HTTP status (a 404 is for the test to judge);
// non-zero, with the reason on stderr, when Chromium cannot start or the page cannot load.
import { parseArgs } from 'node:util';
import { axeViolations, launchOrFail } from './chromium.mjs';

function fail(message, code = 1) {
    process.stderr.write(`open-page: ${message}\n`);
    process.exit(code);
}

let opts;
try {
    ({ values: opts } = parseArgs({
        options: {
            url: { type: 'string' },
            screenshot: { type: 'string' },
            width: { type: 'string', default: '390' },
            height: { type: 'string', default: '844' },
            // Off by default: the pages must work without JavaScript.
            javascript: { type: 'string', default: 'off' },
            'timeout-ms': { type: 'string', default: '30000' },
            axe: { type: 'boolean', default: false },
        },
    }));
} catch (e) {
    fail(e.message, 2);
}
const [width, height, timeout] = [opts.width, opts.height, opts['timeout-ms']].map(Number);
if (!opts.url) fail('--url is required', 2);
if (!['on', 'off'].includes(opts.javascript)) fail('--javascript must be on or off', 2);
if (![width, height, timeout].every((n) => Number.isInteger(n) && n > 0)) {
    fail('--width, --height and --timeout-ms must be positive integers', 2);
}

// Backstop for anything the per-call timeouts below do not cover, so a test never hangs on us.
setTimeout(() => fail(`gave up after ${timeout} ms`), timeout + 5000).unref();

const browser = await launchOrFail(timeout, fail);

try {
    const phone = width <= 600;
    const page = await browser.newPage({
        viewport: { width, height },
        // A phone: the page's <meta name="viewport"> is honoured, so a page without one lays out
        // 980 px wide and shows up as viewportWidth 980.
        isMobile: phone,
        hasTouch: phone,
        deviceScaleFactor: phone ? 2 : 1,
        javaScriptEnabled: opts.javascript === 'on',
    });
    page.setDefaultTimeout(timeout);
    const consoleErrors = [];
    page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    page.on('pageerror', (e) => consoleErrors.push(`uncaught: ${e.message}`));

    const response = await page.goto(opts.url, { waitUntil: 'load', timeout });
    // Runs in Playwright's own evaluation context, which Chromium allows even when the page's
    // scripts are disabled (javaScriptEnabled: false only stops the page's JavaScript).
    const seen = await page.evaluate(() => ({
        title: document.title,
        lang: document.documentElement.getAttribute('lang'),
        text: document.body?.innerText ?? '',
        // The layout viewport. Not window.innerWidth: on a phone Chromium widens that to fit
        // content that overflows, so it would always equal scrollWidth and hide the overflow.
        viewportWidth: document.documentElement.clientWidth,
        // Wider than viewportWidth: the page scrolls sideways on a phone.
        scrollWidth: document.documentElement.scrollWidth,
        elements: [...document.querySelectorAll('[data-check]')].map((el) => ({
            check: el.dataset.check,
            text: el.innerText.trim(),
            href: el.getAttribute('href'),
            attributes: Object.fromEntries(
                [...el.attributes].filter((a) => a.name.startsWith('data-')).map((a) => [a.name, a.value]),
            ),
        })),
    }));

    // After measuring: a full-page capture resizes the viewport for a moment.
    if (opts.screenshot) await page.screenshot({ path: opts.screenshot, fullPage: true });

    const result = {
        // goto answers null only for same-document navigations (a #fragment), never a first load.
        status: response?.status() ?? null,
        contentType: response?.headers()['content-type'] ?? null,
        ...seen,
        consoleErrors,
    };
    if (opts.axe) result.axe = await accessibility(browser, { width, height }, timeout);
    process.stdout.write(JSON.stringify(result) + '\n');
} catch (e) {
    await browser.close().catch(() => {});
    // Playwright colours its call log; the reader is a test's failure message, not a terminal.
    fail(`${opts.url}: ${e.message.replace(/\x1b\[[0-9;]*m/g, '')}`);
}
await browser.close();

/** axe-core's violations on the page, opened again with JavaScript on, at the same size. */
async function accessibility(browser, viewport, timeout) {
    const page = await browser.newPage({ viewport, javaScriptEnabled: true });
    page.setDefaultTimeout(timeout);
    await page.goto(opts.url, { waitUntil: 'load', timeout });
    const violations = await axeViolations(page);
    await page.close();
    return violations;
}
