// What the browser checks share: Debian's Chromium (scripts/test installs it; the `playwright`
// package would download its own), started the way it runs in a container, and axe-core's
// accessibility checks.
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

const require = createRequire(import.meta.url);

/** Starts Chromium headless, or calls `fail` with the reason it cannot. */
export async function launchOrFail(timeout, fail) {
    try {
        return await launch(timeout);
    } catch (e) {
        return fail(`could not start ${CHROMIUM}: ${e.message}`);
    }
}

/** Starts Chromium headless; throws with the reason when it cannot. */
export function launch(timeout) {
    return chromium.launch({
        executablePath: CHROMIUM,
        timeout,
        // Tests run as root, where Chromium's sandbox refuses to start. Containers often have a
        // 64 MB /dev/shm, too small for Chromium; /tmp does instead.
        args: ['--no-sandbox', '--disable-dev-shm-usage'],
    });
}

/**
 * axe-core's violations of WCAG 2.1 A and AA and its best practices on `page`, which must run
 * JavaScript (axe is a script): { id, impact, help, nodes }.
 */
export async function axeViolations(page) {
    await page.addScriptTag({ path: require.resolve('axe-core/axe.min.js') });
    const result = await page.evaluate(() =>
        // eslint-disable-next-line no-undef
        axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } }));
    return result.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.map((n) => n.target.join(' ')),
    }));
}
