//! Validator-set changes from the operator's side (`docs/governance.md`): a new organisation
//! joins with its own keys (`chain join`), someone drafts the new set (`chain propose`), each
//! organisation of the current set signs it with its own key (`chain approve`), and anyone
//! submits it once the approvals carry more than 2/3 of the power (`chain submit`).

use crate::network::{AddressBook, host_port, listen_address, node_toml};
use crate::node::NodeIdentity;
use chain_core::genesis::{SignatureAlg, Validator, ValidatorSet};
use chain_core::governance::{CommittedChange, ValidatorSetChange, ValidatorSetHistory};
use chain_core::{Genesis, Transaction, keys};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use veritrace_kernel::config::{NodeConfig, PeerConfig};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What `veritrace chain join` takes.
#[derive(clap::Args)]
pub struct JoinOptions {
    /// The network directory: holds genesis.json and the address book peers.json.
    #[arg(long)]
    pub dir: PathBuf,
    /// The new validator's name (its node directory is `<dir>/<name>`).
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub organisation: String,
    /// Port the node listens on for peers.
    #[arg(long)]
    pub p2p_port: u16,
    /// Port of the node's API.
    #[arg(long)]
    pub api_port: u16,
    /// Host name or IP address the other validators reach the node at. The node listens on it
    /// when it is a loopback address, else on all interfaces (a container's name, say, is not
    /// an address it can bind).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Voting power to propose for it.
    #[arg(long, default_value_t = 1)]
    pub power: u64,
    #[arg(long, default_value_t = 1000)]
    pub block_interval_ms: u64,
}

/// What `veritrace chain propose` takes.
#[derive(clap::Args)]
pub struct ProposeOptions {
    /// A validator's node API, e.g. http://127.0.0.1:26701.
    #[arg(long)]
    pub node: String,
    /// The chain's genesis: the current set is followed from it, never taken on a node's word.
    #[arg(long)]
    pub genesis: PathBuf,
    /// Where to write the unsigned change (must not exist).
    #[arg(long)]
    pub out: PathBuf,
    /// A validator to add: the validator.json that `chain join` wrote.
    #[arg(long)]
    pub add: Vec<PathBuf>,
    /// A validator to remove, by name.
    #[arg(long)]
    pub remove: Vec<String>,
    /// A new voting power, as NAME=POWER.
    #[arg(long)]
    pub power: Vec<String>,
    /// The change takes effect this many blocks after the node's final head (time enough to
    /// collect the approvals: at least 2).
    #[arg(long, default_value_t = 60)]
    pub effective_in: u64,
}

/// What `veritrace chain approve` takes.
#[derive(clap::Args)]
pub struct ApproveOptions {
    /// The change file; it gains this validator's approval.
    pub change: PathBuf,
    /// The approving validator's node.toml (its key signs, locally).
    #[arg(long)]
    pub config: PathBuf,
}

/// What `veritrace chain submit` takes.
#[derive(clap::Args)]
pub struct SubmitOptions {
    pub change: PathBuf,
    #[arg(long)]
    pub node: String,
    #[arg(long)]
    pub genesis: PathBuf,
    /// Wait until the change is in a final block.
    #[arg(long)]
    pub wait: bool,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn read_genesis(path: &Path) -> Result<Genesis, BoxError> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(Genesis::parse(&bytes)?)
}

fn get<T: serde::de::DeserializeOwned>(node: &str, path: &str) -> Result<T, BoxError> {
    let url = format!("{}{path}", node.trim_end_matches('/'));
    let mut resp = agent()
        .get(&url)
        .call()
        .map_err(|e| format!("{url}: {e}"))?;
    if resp.status() != 200 {
        return Err(format!("{url}: status {}", resp.status()).into());
    }
    Ok(resp.body_mut().read_json()?)
}

/// The chain's validator sets as a node reports them, each change verified from `genesis`.
fn current_sets(node: &str, genesis: &Genesis) -> Result<ValidatorSetHistory, BoxError> {
    let changes: Vec<CommittedChange> = get(node, "/chain/validator-set-changes")?;
    ValidatorSetHistory::from_changes(genesis, &changes)
        .map_err(|e| format!("the node's validator-set changes do not verify: {e}").into())
}

/// Writes `text` to `path` through a file aside, so a crash never leaves half a file.
fn write_atomic(path: &Path, text: &[u8]) -> Result<(), BoxError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

pub fn join(o: &JoinOptions) -> Result<String, BoxError> {
    let genesis = read_genesis(&o.dir.join("genesis.json"))?;
    let mut book = AddressBook::read(&o.dir)?;
    if book.peers.iter().any(|p| p.name == o.name) {
        return Err(format!("{} is already in the address book", o.name).into());
    }
    let probe = ValidatorSet {
        validators: vec![Validator {
            name: o.name.clone(),
            organisation: o.organisation.clone(),
            public_key: String::new(),
            power: o.power.max(1),
        }],
    };
    // The name rules of the genesis apply (checked before any key is written).
    if let Err(chain_core::genesis::GenesisError::BadName(n)) =
        chain_core::genesis::validate_set(&probe, genesis.signature_alg)
    {
        return Err(format!(
            "validator name {n:?} must be 1 to 64 characters of a-z, A-Z, 0-9, '-', '_', '.'"
        )
        .into());
    }
    if o.power == 0 {
        return Err("--power must be at least 1".into());
    }
    if !crate::network::valid_host(&o.host) {
        return Err(format!("--host: {:?} is not a host name or an IP address", o.host).into());
    }
    let node_dir = o.dir.join(&o.name);
    if node_dir.join("validator.key").exists() || node_dir.join("p2p.key").exists() {
        return Err(format!("{} already holds a key", node_dir.display()).into());
    }
    let key = keys::load_or_create(&node_dir.join("validator.key"), genesis.signature_alg)?;
    keys::load_or_create(&node_dir.join("p2p.key"), SignatureAlg::Ed25519)?;
    let peer_id = chain_node::peer_id(&crate::node::read_secret(&node_dir.join("p2p.key"))?)?;
    let me = PeerConfig {
        name: o.name.clone(),
        address: host_port(&o.host, o.p2p_port),
        peer_id,
        api: host_port(&o.host, o.api_port),
    };
    let node = NodeConfig {
        name: o.name.clone(),
        organisation: o.organisation.clone(),
        data_dir: PathBuf::from("data"),
        genesis: PathBuf::from("../genesis.json"),
        key: PathBuf::from("validator.key"),
        p2p_key: PathBuf::from("p2p.key"),
        listen: listen_address(&o.host, o.p2p_port),
        api: listen_address(&o.host, o.api_port),
        block_interval_ms: o.block_interval_ms,
        peers: book.peers.clone(),
        misbehaviour: Default::default(),
    };
    std::fs::write(node_dir.join("node.toml"), node_toml(&node)?)?;
    let entry = Validator {
        name: o.name.clone(),
        organisation: o.organisation.clone(),
        public_key: key.public_key_hex(),
        power: o.power,
    };
    std::fs::write(
        node_dir.join("validator.json"),
        serde_json::to_vec_pretty(&entry)?,
    )?;
    book.peers.push(me);
    book.write(&o.dir)?;
    Ok(format!(
        "{} of {} joined {}: start it with `veritrace node --config {}`;\n\
         it follows the chain and votes once a validator-set change adds {} (propose one with --add {}).\n",
        o.name,
        o.organisation,
        genesis.chain_id,
        node_dir.join("node.toml").display(),
        node_dir.join("validator.json").display(),
        o.name,
    ))
}

/// The current set with `o`'s additions, removals and new powers.
fn edited_set(current: &ValidatorSet, o: &ProposeOptions) -> Result<ValidatorSet, BoxError> {
    let mut set = current.clone();
    for name in &o.remove {
        let before = set.validators.len();
        set.validators.retain(|v| &v.name != name);
        if set.validators.len() == before {
            return Err(format!("--remove {name}: no such validator in the current set").into());
        }
    }
    for p in &o.power {
        let (name, power) = p
            .split_once('=')
            .ok_or_else(|| format!("--power {p:?}: expected NAME=POWER"))?;
        let power: u64 = power
            .parse()
            .map_err(|_| format!("--power {p:?}: the power is not a whole number"))?;
        let v = set
            .validators
            .iter_mut()
            .find(|v| v.name == name)
            .ok_or_else(|| format!("--power {name}: no such validator in the current set"))?;
        v.power = power;
    }
    for path in &o.add {
        let text =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let v: Validator = serde_json::from_slice(&text)
            .map_err(|e| format!("{} is not a validator entry: {e}", path.display()))?;
        if set.get(&v.name).is_some() {
            return Err(format!(
                "--add {}: {} is already a validator",
                path.display(),
                v.name
            )
            .into());
        }
        set.validators.push(v);
    }
    if &set == current {
        return Err("nothing to change: give --add, --remove or --power".into());
    }
    Ok(set)
}

pub fn propose(o: &ProposeOptions) -> Result<String, BoxError> {
    if o.out.exists() {
        return Err(format!("{} already exists (it may hold approvals)", o.out.display()).into());
    }
    if o.effective_in < chain_core::governance::GOVERNANCE_DELAY {
        return Err(format!(
            "--effective-in must be at least {}",
            chain_core::governance::GOVERNANCE_DELAY
        )
        .into());
    }
    let genesis = read_genesis(&o.genesis)?;
    let sets = current_sets(&o.node, &genesis)?;
    let head: serde_json::Value = get(&o.node, "/chain/head")?;
    let head = head["height"]
        .as_u64()
        .ok_or("the node reported no height")?;
    if sets.latest().from_height > head {
        return Err(format!(
            "a change effective at height {} is still pending; propose after it",
            sets.latest().from_height
        )
        .into());
    }
    let current = sets.latest().set.clone();
    let new_set = edited_set(&current, o)?;
    let effective = head + o.effective_in;
    let change = ValidatorSetChange::propose(&genesis, &current, effective, new_set)?;
    std::fs::write(&o.out, serde_json::to_vec_pretty(&change)?)?;
    Ok(format!(
        "wrote {}: the new set takes effect at height {effective} (final head {head}).\n\
         Approvals needed: more than 2/3 of {} voting power of the current set; each organisation runs\n  \
         veritrace chain approve {} --config <its node.toml>\n",
        o.out.display(),
        current.total_power(),
        o.out.display()
    ))
}

fn read_change(path: &Path) -> Result<ValidatorSetChange, BoxError> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(serde_json::from_slice(&text)
        .map_err(|e| format!("{} is not a validator-set change: {e}", path.display()))?)
}

pub fn approve(o: &ApproveOptions) -> Result<String, BoxError> {
    let id = NodeIdentity::load(&o.config)?;
    let mut change = read_change(&o.change)?;
    if change.chain_id != id.genesis.chain_id {
        return Err(format!(
            "the change is for chain {:?}, this validator is of {:?}",
            change.chain_id, id.genesis.chain_id
        )
        .into());
    }
    change.approve(id.genesis.hash_alg, &id.config.name, &id.key)?;
    write_atomic(&o.change, &serde_json::to_vec_pretty(&change)?)?;
    let names: Vec<&str> = change
        .validator_set
        .validators
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    Ok(format!(
        "{} approved the set [{}] from height {} ({} approval(s) so far)\n",
        id.config.name,
        names.join(", "),
        change.effective_height,
        change.approvals.len()
    ))
}

pub fn submit(o: &SubmitOptions) -> Result<String, BoxError> {
    let genesis = read_genesis(&o.genesis)?;
    let change = read_change(&o.change)?;
    let sets = current_sets(&o.node, &genesis)?;
    let current = &sets.latest().set;
    let signed = change.approved_power(&genesis, current)?;
    if !current.is_quorum(signed) {
        let total = current.total_power();
        // Smallest power p with 3p > 2 * total.
        let needed = (2 * u128::from(total)) / 3 + 1;
        return Err(format!(
            "the approvals carry {signed} of {total} voting power; {} more needed before submitting",
            needed.saturating_sub(u128::from(signed))
        )
        .into());
    }
    let tx = Transaction::ValidatorSetChange(change);
    let url = format!("{}/chain/transactions", o.node.trim_end_matches('/'));
    let mut resp = agent()
        .post(&url)
        .send_json(&tx)
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.body_mut().read_json().unwrap_or_default();
    if status != 202 && status != 200 {
        let detail = body["detail"].as_str().unwrap_or("no detail");
        return Err(format!("the node refused the change ({status}): {detail}").into());
    }
    let hash = body["hash"]
        .as_str()
        .ok_or("the node returned no hash")?
        .to_string();
    if !o.wait {
        return Ok(format!("submitted: transaction {hash}\n"));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(loc) = get::<serde_json::Value>(&o.node, &format!("/chain/transactions/{hash}")) {
            return Ok(format!(
                "committed: transaction {hash} in final block {}\n",
                loc["height"]
            ));
        }
        if Instant::now() > deadline {
            return Err(format!("transaction {hash} was not final within 120 s").into());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
