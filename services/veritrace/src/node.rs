//! `veritrace node --config node.toml`: one consortium validator, with its node API (the
//! explorer, transaction submission, transaction lookup).

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chain_core::block::Transaction;
use chain_core::{ChainClient, Digest, Genesis};
use chain_node::{ConsortiumNode, NodeSettings, Peer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use veritrace_kernel::ApiError;
use veritrace_kernel::config::NodeConfig;
use veritrace_kernel::http::ValidJson;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `host:port` as a libp2p TCP multiaddr (`/ip4/…`, `/ip6/…` or `/dns/…`).
pub fn multiaddr(host_port: &str) -> Result<String, BoxError> {
    let (host, port) = host_port
        .rsplit_once(':')
        .ok_or_else(|| format!("{host_port:?} is not host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{host_port:?}: bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok(match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => format!("/ip4/{ip}/tcp/{port}"),
        Ok(std::net::IpAddr::V6(ip)) => format!("/ip6/{ip}/tcp/{port}"),
        Err(_) => format!("/dns/{host}/tcp/{port}"),
    })
}

/// Reads a 32-byte hex secret (the p2p key).
pub fn read_secret(path: &Path) -> Result<[u8; 32], BoxError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut secret)
        .map_err(|_| format!("{} is not a 32-byte hex key", path.display()))?;
    Ok(secret)
}

pub struct RunningNode {
    pub node: Arc<ConsortiumNode>,
    pub api: SocketAddr,
    pub genesis: Genesis,
    server: actix_web::dev::ServerHandle,
}

impl RunningNode {
    pub async fn stop(self) {
        self.server.stop(true).await;
    }
}

/// A validator's node file with the genesis and the validator key it names.
pub struct NodeIdentity {
    pub config: NodeConfig,
    pub genesis: Genesis,
    pub key: chain_core::keys::SigningKey,
    /// The node file's directory: relative paths in it are relative to this.
    pub base: PathBuf,
}

impl NodeIdentity {
    pub fn load(path: &Path) -> Result<NodeIdentity, BoxError> {
        let config = NodeConfig::load(path)?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let genesis_path = resolve(&base, &config.genesis);
        let genesis =
            Genesis::parse(&std::fs::read(&genesis_path).map_err(|e| {
                format!("cannot read the genesis {}: {e}", genesis_path.display())
            })?)?;
        let key_path = resolve(&base, &config.key);
        if !key_path.exists() {
            return Err(format!("the validator key {} does not exist", key_path.display()).into());
        }
        let key = chain_core::keys::load_or_create(&key_path, genesis.signature_alg)?;
        Ok(NodeIdentity {
            config,
            genesis,
            key,
            base,
        })
    }

    pub fn path(&self, p: &Path) -> PathBuf {
        resolve(&self.base, p)
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Starts the validator described by the node file at `path`.
pub async fn start(path: &Path) -> Result<RunningNode, BoxError> {
    let NodeIdentity {
        config: cfg,
        genesis,
        key,
        base,
    } = NodeIdentity::load(path)?;
    let rel = |p: &PathBuf| resolve(&base, p);
    let p2p_secret = read_secret(&rel(&cfg.p2p_key))?;
    let peers = cfg
        .peers
        .iter()
        .map(|p| {
            Ok(Peer {
                name: p.name.clone(),
                p2p: format!("{}/p2p/{}", multiaddr(&p.address)?, p.peer_id),
                api: format!("http://{}", p.api),
            })
        })
        .collect::<Result<Vec<_>, BoxError>>()?;
    let node = ConsortiumNode::start(NodeSettings {
        name: cfg.name.clone(),
        genesis: genesis.clone(),
        key: Arc::new(key),
        p2p_secret,
        data_dir: rel(&cfg.data_dir),
        listen: multiaddr(&cfg.listen)?,
        peers,
        block_interval: Duration::from_millis(cfg.block_interval_ms.max(100)),
        misbehaviour: node_misbehaviour(&cfg.misbehaviour)?,
    })
    .await?;

    let explorer = web::Data::new(crate::explorer::Explorer {
        chain: node.clone() as Arc<dyn ChainClient>,
        anchor: None,
    });
    let node_data = web::Data::from(node.clone());
    let genesis_data = web::Data::new(genesis.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(explorer.clone())
            .app_data(node_data.clone())
            .app_data(genesis_data.clone())
            .app_data(veritrace_kernel::http::BodyLimit(4 * 1024 * 1024))
            .wrap(tracing_actix_web::TracingLogger::default())
            .configure(crate::explorer::configure)
            .route("/chain/transactions", web::post().to(submit))
            .route("/chain/transactions/{hash}", web::get().to(locate))
            .route("/chain/genesis", web::get().to(genesis_document))
            .route("/chain/misbehaviour", web::get().to(misbehaviour))
            .route("/healthz", web::get().to(health))
            .default_service(web::to(veritrace_kernel::http::not_found))
    })
    .disable_signals()
    .workers(2)
    .shutdown_timeout(5)
    .bind(&cfg.api)
    .map_err(|e| format!("cannot listen on {}: {e}", cfg.api))?;
    let api = *server
        .addrs()
        .first()
        .ok_or("the node API bound no address")?;
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok(RunningNode {
        node,
        api,
        genesis,
        server: handle,
    })
}

fn node_misbehaviour(
    cfg: &veritrace_kernel::config::Misbehaviour,
) -> Result<chain_node::Misbehaviour, BoxError> {
    let crash_in_commit = match &cfg.crash_in_commit {
        None => None,
        Some(step) => Some((
            step.parse::<chain_node::CommitStep>()
                .map_err(|e| format!("misbehaviour.crash_in_commit: {e}"))?,
            cfg.crash_at_height,
        )),
    };
    Ok(chain_node::Misbehaviour {
        equivocate_votes: cfg.equivocate_votes,
        bad_transaction_root: cfg.bad_transaction_root,
        crash_in_commit,
        flood_proposal_streams: cfg.flood_proposal_streams,
    })
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Submitted {
    hash: String,
}

/// Submits a transaction to this validator (and, unless it came from a peer, to the others).
async fn submit(
    node: web::Data<ConsortiumNode>,
    req: HttpRequest,
    ValidJson(tx): ValidJson<Transaction>,
) -> Result<HttpResponse, ApiError> {
    let forwarded = req.headers().contains_key("x-veritrace-forwarded");
    let hash = if forwarded {
        node.accept(tx)
    } else {
        node.submit(tx).await
    }
    .map_err(|e| match e {
        chain_core::ChainError::Rejected(m) => ApiError::field("transaction", m),
        other => ApiError::Unavailable(other.to_string()),
    })?;
    Ok(HttpResponse::Accepted().json(Submitted {
        hash: hash.to_hex(),
    }))
}

/// Where a transaction sits, once its block is final.
async fn locate(
    node: web::Data<ConsortiumNode>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let hash: Digest = path
        .parse()
        .map_err(|_| ApiError::field("hash", "must be 64 lowercase hex characters"))?;
    match node
        .locate(&hash)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
    {
        Some(loc) => Ok(HttpResponse::Ok().json(loc)),
        None => Err(ApiError::NotFound(format!(
            "transaction {hash} is not in a final block"
        ))),
    }
}

/// Misbehaviour of other validators this node has seen (conflicting votes or proposals set
/// aside by consensus, invalid proposals voted down), oldest first.
async fn misbehaviour(node: web::Data<ConsortiumNode>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "items": node.observed_misbehaviour() }))
}

async fn genesis_document(genesis: web::Data<Genesis>) -> HttpResponse {
    HttpResponse::Ok().json(genesis.get_ref())
}

/// Liveness, with the heads an operator (or `veritrace bench chain`) watches: committed
/// blocks wait for attestations until final.
async fn health(node: web::Data<ConsortiumNode>) -> HttpResponse {
    let committed_head = node.committed_head().ok();
    let final_head = node.head().await.ok();
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ok",
        "committed_head": committed_head,
        "final_head": final_head,
    }))
}
