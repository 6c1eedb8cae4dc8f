//! Opening a page as a phone would: headless Chromium through `frontend/browser/open-page.mjs`
//! (playwright-core driving Debian's `/usr/bin/chromium`), JavaScript off, 390×844.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether the browser checks run: `VERITRACE_TEST_BROWSER=skip` skips them, saying so.
pub fn browser_checks_run(test: &str) -> bool {
    if std::env::var("VERITRACE_TEST_BROWSER").as_deref() == Ok("skip") {
        eprintln!("SKIPPED the browser part of {test}: VERITRACE_TEST_BROWSER=skip");
        return false;
    }
    true
}

/// Where a test's screenshots go: kept after the run, under the target directory.
pub fn screenshot_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir.join(name)
}

/// Opens `url` at 390×844 with JavaScript off, taking a full-page screenshot to `screenshot`
/// if given; what the page showed (`open-page.mjs` prints it: status, title, text, viewport
/// and scroll widths, every `[data-check]` element).
pub fn open_page(url: &str, screenshot: Option<&Path>) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../frontend/browser/open-page.mjs");
    let mut cmd = Command::new("node");
    cmd.arg(&script).args(["--url", url]);
    if let Some(path) = screenshot {
        cmd.arg("--screenshot").arg(path);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run node {}: {e} (scripts/test installs it)",
            script.display()
        )
    });
    assert!(
        out.status.success(),
        "open-page.mjs failed on {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "open-page.mjs printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The page's `[data-check]` elements named `check`.
pub fn checked<'a>(page: &'a Value, check: &str) -> Vec<&'a Value> {
    page["elements"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["check"] == check)
        .collect()
}

/// Walks the court's verification page through `frontend/browser/court-check.mjs` with the
/// scenario file it reads; what the page showed, as the script prints it.
pub fn court_check(scenario: &Path) -> Value {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../frontend/browser/court-check.mjs");
    let out = Command::new("node")
        .arg(&script)
        .arg("--scenario")
        .arg(scenario)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "court-check.mjs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "court-check.mjs printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
