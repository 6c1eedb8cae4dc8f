//! `veritrace chain init`: a genesis and one node directory per organisation for a consortium
//! of N validators. Each key is generated in its own node's directory and only its public half
//! goes into the genesis.

use chain_core::genesis::{Genesis, SignatureAlg, Validator};
use chain_core::{HashAlg, keys};
use std::path::{Path, PathBuf};
use veritrace_kernel::config::{NodeConfig, PeerConfig};

/// What `veritrace chain init` takes.
#[derive(clap::Args)]
pub struct InitOptions {
    /// Directory of the new network (must not hold a genesis yet).
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Comma-separated organisation names, one per validator (`Organisation <i>` where missing).
    #[arg(long, value_delimiter = ',')]
    pub organisations: Vec<String>,
    /// Chain id (a random `veritrace-…` one when unset).
    #[arg(long)]
    pub chain_id: Option<String>,
    /// sha3-256, sha-256 or sm3.
    #[arg(long, default_value = "sha3-256", value_parser = parse_profile::<HashAlg>)]
    pub hash_alg: HashAlg,
    /// ed25519 or sm2.
    #[arg(long, default_value = "ed25519", value_parser = parse_profile::<SignatureAlg>)]
    pub signature_alg: SignatureAlg,
    /// Validator i listens for peers on `base_port + i` and serves its API on
    /// `base_port + 100 + i`, on 127.0.0.1.
    #[arg(long, default_value_t = 26600)]
    pub base_port: u16,
    #[arg(long, default_value_t = 1000)]
    pub block_interval_ms: u64,
}

/// Parses a profile name (`sha3-256`, `sm2`...) as its enum, by its serialised name.
pub(crate) fn parse_profile<T: serde::de::DeserializeOwned>(v: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(v.to_string()))
        .map_err(|_| format!("unknown profile name {v:?}"))
}

pub struct InitResult {
    pub genesis_path: PathBuf,
    pub genesis: Genesis,
    pub node_configs: Vec<PathBuf>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub fn init(opts: &InitOptions) -> Result<InitResult, BoxError> {
    if !(1..=64).contains(&opts.validators) {
        return Err("--validators must be between 1 and 64".into());
    }
    if opts.organisations.len() > opts.validators {
        return Err(format!(
            "{} organisations named for {} validators",
            opts.organisations.len(),
            opts.validators
        )
        .into());
    }
    let last_port = u32::from(opts.base_port) + 100 + opts.validators as u32;
    if last_port > u32::from(u16::MAX) {
        return Err("--base-port leaves no room for the nodes' ports".into());
    }
    if let Some(id) = &opts.chain_id
        && !chain_core::genesis::valid_chain_id(id)
    {
        // Checked before any key is written, so a refused run leaves nothing behind.
        return Err(chain_core::genesis::GenesisError::ChainId(id.clone()).into());
    }
    let genesis_path = opts.dir.join("genesis.json");
    if genesis_path.exists() {
        return Err(format!(
            "{} already exists: a network is initialised once (choose another --dir)",
            genesis_path.display()
        )
        .into());
    }
    std::fs::create_dir_all(&opts.dir)?;
    let names: Vec<String> = (1..=opts.validators)
        .map(|i| format!("validator-{i}"))
        .collect();
    let mut validators = Vec::with_capacity(opts.validators);
    let mut peer_ids = Vec::with_capacity(opts.validators);
    for (i, name) in names.iter().enumerate() {
        let node_dir = opts.dir.join(name);
        if node_dir.join("validator.key").exists() || node_dir.join("p2p.key").exists() {
            return Err(format!("{} already holds a key", node_dir.display()).into());
        }
        let key = keys::load_or_create(&node_dir.join("validator.key"), opts.signature_alg)?;
        // The transport identity is a separate Ed25519 key in every profile: it authenticates
        // connections, never blocks.
        keys::load_or_create(&node_dir.join("p2p.key"), SignatureAlg::Ed25519)?;
        peer_ids.push(chain_node::peer_id(&crate::node::read_secret(
            &node_dir.join("p2p.key"),
        )?)?);
        validators.push(Validator {
            name: name.clone(),
            organisation: opts
                .organisations
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("Organisation {}", i + 1)),
            public_key: key.public_key_hex(),
            power: 1,
        });
    }
    let genesis = Genesis::create(
        opts.chain_id.as_deref(),
        "veritrace",
        opts.hash_alg,
        opts.signature_alg,
        validators,
    )?;
    genesis.write_new(&genesis_path)?;

    let port =
        |i: usize, offset: u16| format!("127.0.0.1:{}", opts.base_port + offset + i as u16 + 1);
    let book = AddressBook {
        peers: (0..names.len())
            .map(|j| PeerConfig {
                name: names[j].clone(),
                address: port(j, 0),
                peer_id: peer_ids[j].clone(),
                api: port(j, 100),
            })
            .collect(),
    };
    book.write(&opts.dir)?;
    let mut node_configs = Vec::with_capacity(names.len());
    for (i, v) in genesis.validator_set.validators.iter().enumerate() {
        let node = NodeConfig {
            name: v.name.clone(),
            organisation: v.organisation.clone(),
            data_dir: PathBuf::from("data"),
            genesis: PathBuf::from("../genesis.json"),
            key: PathBuf::from("validator.key"),
            p2p_key: PathBuf::from("p2p.key"),
            listen: port(i, 0),
            api: port(i, 100),
            block_interval_ms: opts.block_interval_ms,
            peers: book
                .peers
                .iter()
                .filter(|p| p.name != v.name)
                .cloned()
                .collect(),
            misbehaviour: Default::default(),
        };
        let path = opts.dir.join(&v.name).join("node.toml");
        std::fs::write(&path, node_toml(&node)?)?;
        node_configs.push(path);
    }
    Ok(InitResult {
        genesis_path,
        genesis,
        node_configs,
    })
}

pub fn node_toml(node: &NodeConfig) -> Result<String, BoxError> {
    let body = toml::to_string(node)?;
    Ok(format!(
        "# Validator {} of {}, for `veritrace node --config node.toml`.\n\
         # Paths are relative to this file. validator.key is this node's private key: keep it here.\n{body}",
        node.name, node.organisation
    ))
}

/// The network's address book, `peers.json`: every validator's public addresses and peer id
/// (no secrets). `chain init` writes it, `chain join` reads it and adds the newcomer.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressBook {
    pub peers: Vec<PeerConfig>,
}

impl AddressBook {
    pub fn read(dir: &Path) -> Result<AddressBook, BoxError> {
        let path = dir.join("peers.json");
        let text =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok(serde_json::from_slice(&text)
            .map_err(|e| format!("{} is not an address book: {e}", path.display()))?)
    }

    pub fn write(&self, dir: &Path) -> Result<(), BoxError> {
        let path = dir.join("peers.json");
        let tmp = dir.join("peers.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }
}

/// The command's summary.
pub fn summary(r: &InitResult, dir: &Path) -> String {
    let mut out = format!(
        "initialised chain {} ({}, {}) in {}\n  genesis  {}\n",
        r.genesis.chain_id,
        r.genesis.hash_alg,
        match r.genesis.signature_alg {
            SignatureAlg::Ed25519 => "ed25519",
            SignatureAlg::Sm2 => "sm2",
        },
        dir.display(),
        r.genesis_path.display()
    );
    for (v, p) in r
        .genesis
        .validator_set
        .validators
        .iter()
        .zip(&r.node_configs)
    {
        out.push_str(&format!(
            "  {:<14} {:<24} {}\n",
            v.name,
            v.organisation,
            p.display()
        ));
    }
    out.push_str(
        "Give each organisation its own directory; the private keys never need to move.\n",
    );
    out
}
