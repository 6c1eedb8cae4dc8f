use super::{NodeError, NodeSettings, Shared};
use crate::codec::WireCodec;
use crate::context::ChainContext;
use crate::signing::{ChainSigner, ChainVerifier, SignedRecord};
use malachitebft_app::config::{
    ConsensusConfig, DiscoveryConfig, P2pConfig, PubSubProtocol, ValuePayload, ValueSyncConfig,
};
use malachitebft_app_channel::{
    Channels, ConsensusContext, NetworkContext, NetworkIdentity, RequestContext, SyncContext,
    WalContext,
};
use std::sync::Arc;
use std::time::Duration;

pub(super) async fn start_engine(
    shared: &Arc<Shared>,
    settings: &NodeSettings,
    record: Arc<SignedRecord>,
) -> Result<Channels<ChainContext>, NodeError> {
    let keypair = malachitebft_app::types::Keypair::ed25519_from_bytes(settings.p2p_secret)
        .map_err(|e| NodeError::Config(format!("p2p key: {e}")))?;
    let listen = settings
        .listen
        .parse()
        .map_err(|e| NodeError::Config(format!("listen address {:?}: {e}", settings.listen)))?;
    let persistent_peers = settings
        .peers
        .iter()
        .map(|p| {
            p.p2p
                .parse()
                .map_err(|e| NodeError::Config(format!("peer {:?} address: {e}", p.name)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let config = EngineConfig {
        moniker: settings.name.clone(),
        consensus: ConsensusConfig {
            p2p: P2pConfig {
                listen_addr: listen,
                persistent_peers,
                // Outbound only to the configured peers, no discovery; inbound connections
                // from any peer that authenticates, so that a validator added by governance
                // joins without the others restarting. Consensus messages count only when
                // signed by a validator of the height's set.
                persistent_peers_only: false,
                discovery: DiscoveryConfig {
                    enabled: false,
                    ..Default::default()
                },
                protocol: PubSubProtocol::default(),
                ..Default::default()
            },
            value_payload: ValuePayload::ProposalAndParts,
            ..Default::default()
        },
        value_sync: ValueSyncConfig {
            enabled: true,
            status_update_interval: Duration::from_millis(500),
            ..Default::default()
        },
    };
    let identity =
        NetworkIdentity::new(settings.name.clone(), keypair, Some(shared.me.to_string()));
    let chain_id = shared.genesis.chain_id.clone();
    let signer = ChainSigner {
        chain_id: chain_id.clone(),
        key: settings.key.clone(),
        record: Some(record),
    };
    let wal = WalContext::new(
        settings.data_dir.join("wal").join("consensus.wal"),
        WireCodec,
    );
    let consensus = ConsensusContext::new_validator(
        shared.me,
        Box::new(ChainVerifier {
            chain_id: chain_id.clone(),
        }),
        Box::new(signer.clone()),
    );
    #[cfg(feature = "byzantine")]
    if settings.misbehaviour.equivocate_votes {
        use malachitebft_engine_byzantine::{ByzantineConfig, Trigger};
        tracing::warn!("misbehaving: every vote is followed by a conflicting one");
        let byzantine = malachitebft_app_channel::ByzantineContext {
            identity,
            codec: WireCodec,
            config: ByzantineConfig::default().with_equivocate_votes(Trigger::Always),
            // The second, conflicting voice: the signed record would rightly refuse it.
            signer: Box::new(ChainSigner {
                record: None,
                ..signer
            }),
            address: shared.me,
            conflicting_value_fn: None,
            // None: a vote for a block is contradicted by a nil vote.
            conflicting_vote_value_fn: None,
        };
        let (channels, _engine) =
            malachitebft_app_channel::EngineBuilder::new(ChainContext, config)
                .with_default_wal(wal)
                .with_byzantine_network(byzantine)
                .await
                .map_err(|e| NodeError::Engine(format!("{e:#}")))?
                .with_default_sync(SyncContext::new(WireCodec))
                .with_default_consensus(consensus)
                .with_default_request(RequestContext::new(100))
                .build()
                .await
                .map_err(|e| NodeError::Engine(format!("{e:#}")))?;
        return Ok(channels);
    }
    let (channels, _engine) = malachitebft_app_channel::start_engine(
        ChainContext,
        config,
        wal,
        NetworkContext::new(identity, WireCodec),
        consensus,
        SyncContext::new(WireCodec),
        RequestContext::new(100),
    )
    .await
    .map_err(|e| NodeError::Engine(format!("{e:#}")))?;
    Ok(channels)
}

/// The library's view of our configuration.
#[derive(Clone, Debug)]
struct EngineConfig {
    moniker: String,
    consensus: ConsensusConfig,
    value_sync: ValueSyncConfig,
}

impl malachitebft_app::config::NodeConfig for EngineConfig {
    fn moniker(&self) -> &str {
        &self.moniker
    }
    fn consensus(&self) -> &ConsensusConfig {
        &self.consensus
    }
    fn consensus_mut(&mut self) -> &mut ConsensusConfig {
        &mut self.consensus
    }
    fn value_sync(&self) -> &ValueSyncConfig {
        &self.value_sync
    }
    fn value_sync_mut(&mut self) -> &mut ValueSyncConfig {
        &mut self.value_sync
    }
}
