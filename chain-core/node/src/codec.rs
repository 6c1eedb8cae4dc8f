//! Wire and WAL encoding of the consensus library's messages: Borsh, deterministic and compact.
//! Internal to the consortium and versioned with the library; receipts never contain it.

use crate::context::{ChainContext, Height, ProposalPart, Signature};
use borsh::{BorshDeserialize, BorshSerialize};
use bytes::Bytes;
use malachitebft_app::consensus::{LivenessMsg, ProposedValue, SignedConsensusMsg};
use malachitebft_app::streaming::StreamMessage;
use malachitebft_app::types::codec::{Codec, HasEncodedLen};
use malachitebft_app::types::core::{
    ExtendedCommitCertificate, ExtendedCommitSignature, PolkaCertificate, Round, SignedExtension,
    ValidatorProof,
};
use malachitebft_app::types::sync;
use malachitebft_sync::{RawDecidedValue, ValueResponse};

#[derive(Clone, Copy, Debug, Default)]
pub struct WireCodec;

#[derive(Debug, thiserror::Error)]
#[error("consensus message encoding: {0}")]
pub struct CodecError(String);

fn encode<T: BorshSerialize>(value: &T) -> Result<Bytes, CodecError> {
    borsh::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| CodecError(e.to_string()))
}

fn decode<T: BorshDeserialize>(bytes: &[u8]) -> Result<T, CodecError> {
    borsh::from_slice(bytes).map_err(|e| CodecError(e.to_string()))
}

macro_rules! borsh_codec {
    ($($t:ty),* $(,)?) => {$(
        impl Codec<$t> for WireCodec {
            type Error = CodecError;
            fn decode(&self, bytes: Bytes) -> Result<$t, CodecError> {
                decode(&bytes)
            }
            fn encode(&self, msg: &$t) -> Result<Bytes, CodecError> {
                encode(msg)
            }
        }
    )*};
}

borsh_codec!(
    ProposalPart,
    SignedConsensusMsg<ChainContext>,
    LivenessMsg<ChainContext>,
    StreamMessage<ProposalPart>,
    ProposedValue<ChainContext>,
    PolkaCertificate<ChainContext>,
    sync::Status<ChainContext>,
    sync::Request<ChainContext>,
);

#[derive(BorshSerialize, BorshDeserialize)]
struct WireValidatorProof {
    public_key: Vec<u8>,
    peer_id: Vec<u8>,
    signature: Signature,
}

impl Codec<ValidatorProof<ChainContext>> for WireCodec {
    type Error = CodecError;
    fn decode(&self, bytes: Bytes) -> Result<ValidatorProof<ChainContext>, CodecError> {
        let w: WireValidatorProof = decode(&bytes)?;
        Ok(ValidatorProof::new(w.public_key, w.peer_id, w.signature))
    }
    fn encode(&self, p: &ValidatorProof<ChainContext>) -> Result<Bytes, CodecError> {
        encode(&WireValidatorProof {
            public_key: p.public_key.clone(),
            peer_id: p.peer_id.clone(),
            signature: p.signature.clone(),
        })
    }
}

/// The library ships no Borsh encoding of its extended commit certificates, so sync responses
/// go through this mirror of their fields.
#[derive(BorshSerialize, BorshDeserialize)]
struct WireSignature {
    address: crate::context::Address,
    signature: Signature,
    extension: Option<SignedExtension<ChainContext>>,
}

#[derive(BorshSerialize, BorshDeserialize)]
struct WireDecided {
    value_bytes: Vec<u8>,
    height: Height,
    round: Round,
    value_id: crate::context::BlockId,
    signatures: Vec<WireSignature>,
}

#[derive(BorshSerialize, BorshDeserialize)]
struct WireResponse {
    start_height: Height,
    values: Vec<WireDecided>,
}

fn to_wire(r: &sync::Response<ChainContext>) -> WireResponse {
    let sync::Response::ValueResponse(v) = r;
    WireResponse {
        start_height: v.start_height,
        values: v
            .values
            .iter()
            .map(|d| WireDecided {
                value_bytes: d.value_bytes.to_vec(),
                height: d.certificate.height,
                round: d.certificate.round,
                value_id: d.certificate.value_id,
                signatures: d
                    .certificate
                    .commit_signatures
                    .iter()
                    .map(|s| WireSignature {
                        address: s.address,
                        signature: s.signature.clone(),
                        extension: s.extension.clone(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

impl Codec<sync::Response<ChainContext>> for WireCodec {
    type Error = CodecError;
    fn decode(&self, bytes: Bytes) -> Result<sync::Response<ChainContext>, CodecError> {
        let w: WireResponse = decode(&bytes)?;
        let values = w
            .values
            .into_iter()
            .map(|d| {
                RawDecidedValue::new(
                    Bytes::from(d.value_bytes),
                    ExtendedCommitCertificate {
                        height: d.height,
                        round: d.round,
                        value_id: d.value_id,
                        commit_signatures: d
                            .signatures
                            .into_iter()
                            .map(|s| ExtendedCommitSignature {
                                address: s.address,
                                signature: s.signature,
                                extension: s.extension,
                            })
                            .collect(),
                    },
                )
            })
            .collect();
        Ok(sync::Response::ValueResponse(ValueResponse::new(
            w.start_height,
            values,
        )))
    }
    fn encode(&self, r: &sync::Response<ChainContext>) -> Result<Bytes, CodecError> {
        encode(&to_wire(r))
    }
}

impl HasEncodedLen<sync::Response<ChainContext>> for WireCodec {
    fn encoded_len(&self, r: &sync::Response<ChainContext>) -> Result<usize, CodecError> {
        borsh::object_length(&to_wire(r)).map_err(|e| CodecError(e.to_string()))
    }
}

/// A decided height's commit certificate, as the node stores it.
#[derive(BorshSerialize, BorshDeserialize)]
pub struct WireCertificate {
    height: Height,
    round: Round,
    value_id: crate::context::BlockId,
    signatures: Vec<WireSignature>,
}

impl From<&ExtendedCommitCertificate<ChainContext>> for WireCertificate {
    fn from(c: &ExtendedCommitCertificate<ChainContext>) -> Self {
        WireCertificate {
            height: c.height,
            round: c.round,
            value_id: c.value_id,
            signatures: c
                .commit_signatures
                .iter()
                .map(|s| WireSignature {
                    address: s.address,
                    signature: s.signature.clone(),
                    extension: s.extension.clone(),
                })
                .collect(),
        }
    }
}

impl From<WireCertificate> for ExtendedCommitCertificate<ChainContext> {
    fn from(w: WireCertificate) -> Self {
        ExtendedCommitCertificate {
            height: w.height,
            round: w.round,
            value_id: w.value_id,
            commit_signatures: w
                .signatures
                .into_iter()
                .map(|s| ExtendedCommitSignature {
                    address: s.address,
                    signature: s.signature,
                    extension: s.extension,
                })
                .collect(),
        }
    }
}
