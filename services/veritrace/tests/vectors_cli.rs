//! The `veritrace verify` command against the published receipt vectors: it must accept
//! every "verified" entry (exit 0) and reject every "rejected" one (exit 1) with the entry's
//! code, an invalid genesis included (`genesis`); entries with a document check it too.

use std::path::Path;
use std::process::Command;

#[test]
fn the_cli_agrees_with_every_published_vector() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/vectors");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest"))
            .expect("json");
    let entries = manifest.as_array().expect("array");
    assert!(
        entries.len() >= 30,
        "the vector set shrank to {}",
        entries.len()
    );
    for entry in entries {
        let mut verify = Command::new(env!("CARGO_BIN_EXE_veritrace"));
        verify
            .arg("verify")
            .arg(dir.join(entry["receipt"].as_str().unwrap()))
            .arg("--genesis")
            .arg(dir.join(entry["genesis"].as_str().unwrap()));
        if let Some(document) = entry["document"].as_str() {
            verify.arg("--file").arg(dir.join(document));
        }
        let out = verify.output().expect("run verify");
        let stderr = String::from_utf8_lossy(&out.stderr);
        match entry["expect"].as_str().unwrap() {
            "verified" => assert_eq!(out.status.code(), Some(0), "{entry}: {stderr}"),
            _ => {
                assert_eq!(out.status.code(), Some(1), "{entry}: {stderr}");
                let code = entry["code"].as_str().unwrap();
                assert!(
                    stderr.starts_with(&format!("NOT VERIFIED ({code}): ")),
                    "{entry}: {stderr}"
                );
            }
        }
    }
}
