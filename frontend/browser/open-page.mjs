// Opens one page in headless Chromium, the way a phone would, and prints what the Rust end-to-end
// tests check as ONE JSON object on stdout:
//
//   node frontend/browser/open-page.mjs --url URL [--screenshot OUT.png] [--width 390 --height 844]
//                                       [--javascript on|off] [--timeout-ms 30000]
//
// Exit 0 once the page has loaded, whatever its HTTP status (a 404 is for the test to judge);
// non-zero, with the reason on stderr, when Chromium cannot start or the page cannot load.
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

// Debian's chromium (scripts/test installs it): the `playwright` package would download its own.
const CHROMIUM = '/usr/bin/chromium';

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

let browser;
try {
    browser = await chromium.launch({
        executablePath: CHROMIUM,
        timeout,
        // Tests run as root, where Chromium's sandbox refuses to start. Containers often have a
        // 64 MB /dev/shm, too small for Chromium; /tmp does instead.
        args: ['--no-sandbox', '--disable-dev-shm-usage'],
    });
} catch (e) {
    fail(`could not start ${CHROMIUM}: ${e.message}`);
}

try {
    const page = await browser.newPage({
        viewport: { width, height },
        // A phone: the page's <meta name="viewport"> is honoured, so a page without one lays out
        // 980 px wide and shows up as viewportWidth 980.
        isMobile: true,
        hasTouch: true,
        deviceScaleFactor: 2,
        javaScriptEnabled: opts.javascript === 'on',
    });
    page.setDefaultTimeout(timeout);

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
    };
    process.stdout.write(JSON.stringify(result) + '\n');
} catch (e) {
    await browser.close().catch(() => {});
    // Playwright colours its call log; the reader is a test's failure message, not a terminal.
    fail(`${opts.url}: ${e.message.replace(/\x1b\[[0-9;]*m/g, '')}`);
}
await browser.close();
