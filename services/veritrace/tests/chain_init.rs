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

/// Every file under `dir` with its bytes, to show that a run wrote nothing.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn hosts_make_nodes_listen_everywhere_and_advertise_their_names() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let hosts = ["validator-1", "bank.example", "10.1.2.3"];
    let out = init(
        &dir,
        &[
            "--validators",
            "3",
            "--base-port",
            "27000",
            "--hosts",
            &hosts.join(","),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let book: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("peers.json")).unwrap()).unwrap();
    for (i, host) in hosts.iter().enumerate() {
        let name = format!("validator-{}", i + 1);
        let (p2p, api) = (27001 + i, 27101 + i);
        let node = NodeConfig::load(&dir.join(&name).join("node.toml")).unwrap();
        // Bound on every interface: inside a container its host name is not a local address.
        assert_eq!(node.listen, format!("0.0.0.0:{p2p}"));
        assert_eq!(node.api, format!("0.0.0.0:{api}"));
        assert_eq!(book["peers"][i]["address"], format!("{host}:{p2p}"));
        assert_eq!(book["peers"][i]["api"], format!("{host}:{api}"));
        // Every other node reaches it by its name.
        for j in (0..hosts.len()).filter(|j| *j != i) {
            let other =
                NodeConfig::load(&dir.join(format!("validator-{}", j + 1)).join("node.toml"))
                    .unwrap();
            let peer = other.peers.iter().find(|p| p.name == name).unwrap();
            assert_eq!(peer.address, format!("{host}:{p2p}"));
            assert_eq!(peer.api, format!("{host}:{api}"));
            assert_eq!(peer.peer_id, book["peers"][i]["peer_id"]);
        }
    }
    // What `veritrace node` dials: a name becomes /dns/, an address /ip4/.
    assert_eq!(
        veritrace::node::multiaddr("bank.example:27002").unwrap(),
        "/dns/bank.example/tcp/27002"
    );
    assert_eq!(
        veritrace::node::multiaddr("10.1.2.3:27003").unwrap(),
        "/ip4/10.1.2.3/tcp/27003"
    );
    assert_eq!(
        veritrace::node::multiaddr("0.0.0.0:27001").unwrap(),
        "/ip4/0.0.0.0/tcp/27001"
    );
}

#[test]
fn hosts_must_name_one_valid_host_per_validator() {
    let tmp = tempfile::tempdir().unwrap();
    for (k, (n, hosts)) in [
        ("4", "a,b,c"),
        ("2", "a,b,c"),
        ("2", "a,b c"),
        ("2", "a,b:1"),
        ("2", "a,"),
        ("2", "a,-b"),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tmp.path().join(format!("net-{k}"));
        let out = init(&dir, &["--validators", n, "--hosts", hosts]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{n} validators, --hosts {hosts}"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--hosts"), "{err}");
        assert!(!dir.exists(), "a refused run writes nothing");
    }
}

#[test]
fn if_missing_keeps_an_existing_network_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let args = ["--validators", "2", "--if-missing"];
    // An empty directory is initialised as usual.
    let first = init(&dir, &args);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("initialised chain"));
    let before = snapshot(&dir);
    assert!(
        before.len() >= 6,
        "genesis, peers.json, two keys and a node.toml per node"
    );

    // Again, even with other options: kept, successfully, byte for byte.
    let again = init(&dir, &["--validators", "4", "--if-missing"]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(said.contains("kept the existing chain"), "{said}");
    assert_eq!(snapshot(&dir), before);

    // Without the flag an existing network is still refused.
    let refused = init(&dir, &["--validators", "2"]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(snapshot(&dir), before);

    // A genesis.json that is not a genesis is not a network to keep.
    let broken = tmp.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("genesis.json"), "{}").unwrap();
    let out = init(&broken, &["--if-missing"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a genesis"));
}

/// Four validators whose peers are host names (`localhost`), as compose writes them: the
/// nodes resolve the `/dns/` addresses, connect and finalise blocks.
#[test]
fn validators_reach_each_other_by_host_name() {
    use std::process::{Child, Stdio};
    use std::time::{Duration, Instant};
    struct Nodes(Vec<Child>);
    impl Drop for Nodes {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let base = 27400;
    let out = init(
        &dir,
        &[
            "--base-port",
            &base.to_string(),
            "--block-interval-ms",
            "200",
            "--hosts",
            "localhost,localhost,localhost,localhost",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut nodes = Nodes(Vec::new());
    for i in 1..=4 {
        let log = std::fs::File::create(dir.join(format!("node-{i}.log"))).unwrap();
        nodes.0.push(
            Command::new(env!("CARGO_BIN_EXE_veritrace"))
                .args(["node", "--config"])
                .arg(dir.join(format!("validator-{i}")).join("node.toml"))
                .env("VERITRACE_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start veritrace node"),
        );
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    let head = |i: u16| -> Option<u64> {
        let url = format!("http://localhost:{}/chain/head", base + 100 + i);
        let mut resp = agent.get(&url).call().ok()?;
        let v: serde_json::Value = resp.body_mut().read_json().ok()?;
        v["height"].as_u64()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let heads: Vec<Option<u64>> = (1..=4).map(head).collect();
        // Height 2 needs votes from at least three of the four: the nodes found each other.
        if heads.iter().all(|h| h.is_some_and(|h| h >= 2)) {
            break;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = (1..=4)
                .map(|i| {
                    std::fs::read_to_string(dir.join(format!("node-{i}.log"))).unwrap_or_default()
                })
                .collect();
            panic!(
                "no final height 2 on every node: {heads:?}\n{}",
                logs.join("\n---\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `chain join --host`: the others dial the host name, the new node binds all interfaces
/// (a container cannot bind its own service name); a bad host is refused, writing nothing.
#[test]
fn a_joining_validator_listens_where_it_can_bind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let out = init(&dir, &["--validators", "4", "--hosts", "v1,v2,v3,v4"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let join = |name: &str, host: &str| {
        Command::new(env!("CARGO_BIN_EXE_veritrace"))
            .args(["chain", "join", "--dir"])
            .arg(&dir)
            .args(["--name", name, "--organisation", "Newcomer"])
            .args(["--p2p-port", "26605", "--api-port", "26705", "--host", host])
            .output()
            .expect("run chain join")
    };
    let refused = join("validator-6", "bad host");
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--host"));
    assert!(
        !dir.join("validator-6").exists(),
        "a refused join writes nothing"
    );

    let out = join("validator-5", "validator-5");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let node = NodeConfig::load(&dir.join("validator-5").join("node.toml")).unwrap();
    assert_eq!(
        (node.listen.as_str(), node.api.as_str()),
        ("0.0.0.0:26605", "0.0.0.0:26705")
    );
    let book: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("peers.json")).unwrap()).unwrap();
    let me = book["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "validator-5")
        .expect("the address book lists the new validator");
    assert_eq!(
        (me["address"].as_str(), me["api"].as_str()),
        (Some("validator-5:26605"), Some("validator-5:26705"))
    );
}
