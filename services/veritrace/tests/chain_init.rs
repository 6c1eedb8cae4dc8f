//! `veritrace chain init`: a consortium genesis and one node directory per organisation.

use std::process::Command;
use veritrace_kernel::config::NodeConfig;

fn init(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_veritrace"))
        .args(["chain", "init", "--dir"])
        .arg(dir)
        .args(extra)
        .output()
        .expect("run chain init")
}

#[test]
fn four_organisations_get_a_genesis_and_their_own_keys() {
    for (hash, sig) in [("sha3-256", "ed25519"), ("sm3", "sm2")] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("net");
        let out = init(
            &dir,
            &[
                "--organisations",
                "Court,Bank,Tax Bureau,Enterprise",
                "--hash-alg",
                hash,
                "--signature-alg",
                sig,
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let genesis =
            chain_core::Genesis::parse(&std::fs::read(dir.join("genesis.json")).unwrap()).unwrap();
        assert_eq!(genesis.hash_alg.name(), hash);
        let validators = &genesis.validator_set.validators;
        assert_eq!(validators.len(), 4);
        let orgs: Vec<&str> = validators.iter().map(|v| v.organisation.as_str()).collect();
        assert_eq!(orgs, ["Court", "Bank", "Tax Bureau", "Enterprise"]);
        let genesis_text = std::fs::read_to_string(dir.join("genesis.json")).unwrap();
        let mut listens = Vec::new();
        for v in validators {
            let node_dir = dir.join(&v.name);
            let node = NodeConfig::load(&node_dir.join("node.toml")).unwrap();
            assert_eq!(
                (node.name.as_str(), node.organisation.as_str()),
                (v.name.as_str(), v.organisation.as_str())
            );
            assert_eq!(
                node_dir.join(&node.genesis).canonicalize().unwrap(),
                dir.join("genesis.json").canonicalize().unwrap()
            );
            assert_eq!(node.peers.len(), 3);
            assert!(!node.peers.iter().any(|p| p.address == node.listen));
            listens.push(node.listen.clone());
            // The key in the node's directory is the one the genesis names, readable by its
            // owner only, and its private half appears nowhere else.
            let key_path = node_dir.join(&node.key);
            let key = chain_core::keys::load_or_create(&key_path, genesis.signature_alg).unwrap();
            assert_eq!(key.public_key_hex(), v.public_key);
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
                0o600
            );
            let secret = std::fs::read_to_string(&key_path).unwrap();
            assert!(!genesis_text.contains(secret.trim()));
            for other in validators.iter().filter(|o| o.name != v.name) {
                let other_toml =
                    std::fs::read_to_string(dir.join(&other.name).join("node.toml")).unwrap();
                assert!(!other_toml.contains(secret.trim()));
            }
        }
        listens.sort();
        listens.dedup();
        assert_eq!(listens.len(), 4, "every node listens on its own port");

        // A network is initialised once.
        let again = init(&dir, &[]);
        assert_eq!(again.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    }
}

#[test]
fn bad_options_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = init(&tmp.path().join("a"), &["--hash-alg", "md5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("md5"));
    let out = init(
        &tmp.path().join("b"),
        &["--validators", "2", "--organisations", "A,B,C"],
    );
    assert_eq!(out.status.code(), Some(1));
    let out = init(&tmp.path().join("c"), &["--chain-id", "Not A Valid Id"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !tmp.path().join("c").exists(),
        "a refused run writes nothing"
    );
}
