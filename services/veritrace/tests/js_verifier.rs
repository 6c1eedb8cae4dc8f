//! The second verifier, in JavaScript (`frontend/verifier/`, written from `docs/receipts.md`;
//! the court's page runs it in the browser), against the Rust one: on every published vector,
//! in all three profiles, both accept and reject exactly the same entries, with the same
//! failure codes; its own unit tests pass; its command line reports as `veritrace verify`
//! does.

use chain_core::Genesis;
use chain_core::receipt::{Receipt, attested_content, check_content_digest, verify_bytes};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn node(args: &[&str]) -> std::process::Output {
    Command::new("node")
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot run node {args:?}: {e} (scripts/test needs node)"))
}

/// The Rust verifier's outcome of one manifest entry: None when verified, else its code.
fn rust_outcome(dir: &Path, entry: &Value) -> Option<String> {
    let read = |member: &str| std::fs::read(dir.join(entry[member].as_str().unwrap())).unwrap();
    let Ok(genesis) = Genesis::parse(&read("genesis")) else {
        return Some("genesis".into());
    };
    let bytes = read("receipt");
    if let Err(e) = verify_bytes(&bytes, &genesis) {
        return Some(e.code().into());
    }
    let document = entry["document"].as_str()?;
    let Ok(Receipt::Anchored(r)) = Receipt::parse(&bytes) else {
        unreachable!("a verified receipt is anchored")
    };
    let checked = attested_content(&r.event).and_then(|attested| {
        let actual = attested
            .algorithm
            .hash_reader(std::fs::File::open(dir.join(document)).unwrap())
            .unwrap();
        check_content_digest(&r.event, &actual)
    });
    checked.err().map(|e| e.code().into())
}

#[test]
fn the_javascript_and_rust_verifiers_agree_on_every_published_vector() {
    let dir = repo().join("schemas/vectors");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let entries = manifest.as_array().unwrap();
    let out = node(&["frontend/verifier/check-vectors.js", "--json"]);
    let js: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check-vectors.js printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(js.len(), entries.len());
    let mut profiles = std::collections::BTreeMap::<String, usize>::new();
    for (entry, js) in entries.iter().zip(&js) {
        let rust = rust_outcome(&dir, entry);
        let js = js["code"].as_str().map(str::to_string);
        assert_eq!(js, rust, "JS and Rust disagree on {entry}");
        let expected = entry["code"].as_str().map(str::to_string);
        assert_eq!(rust, expected, "{entry}");
        let profile = entry["receipt"]
            .as_str()
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        *profiles.entry(profile.into()).or_default() += 1;
    }
    assert_eq!(
        profiles.keys().collect::<Vec<_>>(),
        ["sha-256", "sha3-256", "sm3-sm2"],
        "all three profiles"
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_javascript_verifiers_own_tests_pass() {
    let out = node(&["--test", "frontend/verifier/test/"]);
    assert!(
        out.status.success(),
        "node --test frontend/verifier/test/:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_javascript_command_line_reports_as_veritrace_verify_does() {
    let v = "schemas/vectors";
    let run = |receipt: &str, genesis: &str| {
        node(&[
            "frontend/verifier/cli.js",
            &format!("{v}/{receipt}"),
            &format!("{v}/{genesis}"),
        ])
    };
    let ok = run("sm3-sm2/valid-1.receipt.json", "genesis-sm3-sm2.json");
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let bad = run(
        "sha3-256/tampered-signature.receipt.json",
        "genesis-sha3-256.json",
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).starts_with("NOT VERIFIED (bad-signature): "),
        "{bad:?}"
    );
    let genesis = run(
        "sha3-256/valid-1.receipt.json",
        "genesis-invalid-duplicate-name-sha3-256.json",
    );
    assert_eq!(genesis.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&genesis.stderr).starts_with("NOT VERIFIED (genesis): "));
    let missing = run("sha3-256/no-such.receipt.json", "genesis-sha3-256.json");
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
}
