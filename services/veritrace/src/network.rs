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
    /// Directory of the new network (must not hold a genesis yet, unless `--if-missing`).
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
    /// `base_port + 100 + i`, on 127.0.0.1 (with `--hosts`, on all interfaces unless its host
    /// is a loopback address).
    #[arg(long, default_value_t = 26600)]
    pub base_port: u16,
    #[arg(long, default_value_t = 1000)]
    pub block_interval_ms: u64,
    /// Comma-separated host names (or IP addresses), one per validator, for validators on
    /// separate hosts or containers: validator i then listens on all interfaces (0.0.0.0, or
    /// [::] for an IPv6 address; a loopback address stays loopback) at its ports, and the
    /// others reach its consensus port and API at `<host i>:<port>`.
    /// Unset: everything on 127.0.0.1.
    #[arg(long, value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// When the directory already holds a genesis, keep that network: write nothing and exit
    /// successfully (a deployment's one-shot init step runs on every start).
    #[arg(long)]
    pub if_missing: bool,
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
    /// The network existed and `--if-missing` kept it: nothing was written.
    pub kept: bool,
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
    if !opts.hosts.is_empty() && opts.hosts.len() != opts.validators {
        return Err(format!(
            "--hosts names {} hosts for {} validators: give one per validator",
            opts.hosts.len(),
            opts.validators
        )
        .into());
    }
    if let Some(bad) = opts.hosts.iter().find(|h| !valid_host(h)) {
        return Err(format!("--hosts: {bad:?} is not a host name or an IP address").into());
    }
    let genesis_path = opts.dir.join("genesis.json");
    if opts.if_missing && genesis_path.exists() {
        return kept(opts, genesis_path);
    }
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

    let port = |i: usize, offset: u16| opts.base_port + offset + i as u16 + 1;
    // Where the others reach validator i, and where it listens itself. NodeConfig has no
    // separate "advertised" address: a node's own `listen` and `api` are only bound, while the
    // address others dial is the one in their `peers` (and in peers.json).
    let host = |i: usize| opts.hosts.get(i).map_or("127.0.0.1", String::as_str);
    let advertised = |i: usize, offset: u16| host_port(host(i), port(i, offset));
    let bound = |i: usize, offset: u16| listen_address(host(i), port(i, offset));
    let book = AddressBook {
        peers: (0..names.len())
            .map(|j| PeerConfig {
                name: names[j].clone(),
                address: advertised(j, 0),
                peer_id: peer_ids[j].clone(),
                api: advertised(j, 100),
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
            listen: bound(i, 0),
            api: bound(i, 100),
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
        kept: false,
    })
}

/// `--if-missing` found a genesis: report the existing network, write nothing. A file that is
/// not a genesis is still an error, so a broken volume is not mistaken for a network.
fn kept(opts: &InitOptions, genesis_path: PathBuf) -> Result<InitResult, BoxError> {
    let text = std::fs::read(&genesis_path)
        .map_err(|e| format!("cannot read {}: {e}", genesis_path.display()))?;
    let genesis = Genesis::parse(&text)
        .map_err(|e| format!("{} is not a genesis: {e}", genesis_path.display()))?;
    let node_configs = genesis
        .validator_set
        .validators
        .iter()
        .map(|v| opts.dir.join(&v.name).join("node.toml"))
        .filter(|p| p.exists())
        .collect();
    Ok(InitResult {
        genesis_path,
        genesis,
        node_configs,
        kept: true,
    })
}

/// A DNS name (letters, digits, `-`, `_`, dot-separated labels) or an IP address: what can
/// stand before `:port` in a peer address and become a libp2p `/dns/`, `/ip4/` or `/ip6/`.
pub(crate) fn valid_host(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Where a node that others reach at `host` listens. A loopback host stays loopback (a
/// network on one machine). Any other host is a name or address the others dial, not
/// necessarily one of the node's own interfaces (a container's name is not, and libp2p cannot
/// listen on a `/dns/` address): the node listens on all interfaces.
pub(crate) fn listen_address(host: &str, port: u16) -> String {
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_loopback() => host_port(host, port),
        Ok(std::net::IpAddr::V6(_)) => format!("[::]:{port}"),
        _ if host.eq_ignore_ascii_case("localhost") => format!("127.0.0.1:{port}"),
        _ => format!("0.0.0.0:{port}"),
    }
}

/// `host:port`, with an IPv6 address in brackets.
pub(crate) fn host_port(host: &str, port: u16) -> String {
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
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
    if r.kept {
        return format!(
            "kept the existing chain {} in {} ({} validators; --if-missing): nothing written\n  genesis  {}\n",
            r.genesis.chain_id,
            dir.display(),
            r.genesis.validator_set.validators.len(),
            r.genesis_path.display()
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_listen_where_they_can_bind() {
        assert_eq!(listen_address("127.0.0.1", 26601), "127.0.0.1:26601");
        assert_eq!(listen_address("::1", 26601), "[::1]:26601");
        assert_eq!(listen_address("localhost", 26601), "127.0.0.1:26601");
        assert_eq!(listen_address("validator-5", 26605), "0.0.0.0:26605");
        assert_eq!(listen_address("10.0.0.5", 26605), "0.0.0.0:26605");
        assert_eq!(listen_address("fd00::5", 26605), "[::]:26605");
        assert_eq!(host_port("fd00::5", 26605), "[fd00::5]:26605");
        assert!(valid_host("validator-5") && valid_host("fd00::5"));
        assert!(!valid_host("bad host") && !valid_host("") && !valid_host("-x"));
    }
}
