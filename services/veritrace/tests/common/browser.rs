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
    open_page_at(url, screenshot, PHONE, false)
}

pub const PHONE: (u32, u32) = (390, 844);
pub const DESKTOP: (u32, u32) = (1280, 900);

/// Opens `url` at `size` with JavaScript off (as a phone up to 600 px wide, else as a desktop
/// browser), with axe-core's accessibility checks when `axe` (their violations under "axe").
pub fn open_page_at(url: &str, screenshot: Option<&Path>, size: (u32, u32), axe: bool) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../frontend/browser/open-page.mjs");
    let mut cmd = Command::new("node");
    cmd.arg(&script).args(["--url", url]);
    cmd.args([
        "--width",
        &size.0.to_string(),
        "--height",
        &size.1.to_string(),
    ]);
    if let Some(path) = screenshot {
        cmd.arg("--screenshot").arg(path);
    }
    if axe {
        cmd.arg("--axe");
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

/// Opens a server-rendered page at desktop size and at 390×844, with screenshots
/// (`<name>-desktop.png`, `<name>-390x844.png`) and axe-core; asserts what every page owes its
/// readers: a 200, no console errors, no accessibility violations, nothing scrolling sideways on
/// the phone. Returns the phone's view.
pub fn audit_page(url: &str, name: &str) -> Value {
    let mut phone = Value::Null;
    for (size, suffix) in [(DESKTOP, "desktop"), (PHONE, "390x844")] {
        let shot = screenshot_path(&format!("{name}-{suffix}.png"));
        let seen = open_page_at(url, Some(&shot), size, true);
        assert_eq!(seen["status"], 200, "{url}: {}", seen["text"]);
        assert_eq!(
            seen["consoleErrors"],
            serde_json::json!([]),
            "{url} at {suffix}"
        );
        assert_eq!(
            seen["axe"],
            serde_json::json!([]),
            "axe-core on {url} at {suffix}"
        );
        assert!(
            seen["scrollWidth"].as_u64() <= seen["viewportWidth"].as_u64(),
            "{url} scrolls sideways at {suffix}: {} > {}",
            seen["scrollWidth"],
            seen["viewportWidth"]
        );
        assert!(shot.is_file(), "{}", shot.display());
        phone = seen;
    }
    phone
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
