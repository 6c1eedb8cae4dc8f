//! `veritrace verify`: checks a receipt offline against a genesis document, and optionally
//! that the event attests a given file or digest.

use chain_core::receipt::{self, Receipt, VerifiedReceipt, VerifyError};
use chain_core::{ContentHash, Genesis};
use std::path::Path;

/// What the document check compares the event's `content_hash` with.
pub enum Subject<'a> {
    None,
    File(&'a Path),
    Digest(&'a str),
}

pub struct Verified {
    pub receipt: VerifiedReceipt,
    pub content: Option<(ContentHash, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyCommandError {
    /// The inputs could not be read: nothing was verified.
    #[error("{0}")]
    Input(String),
    /// The receipt (or the file) does not verify.
    #[error("{0}")]
    Failed(#[from] VerifyError),
    /// The genesis document breaks a rule of docs/receipts.md §5: nothing can verify against
    /// it (code `genesis`).
    #[error("{0}")]
    Genesis(String),
}

impl VerifyCommandError {
    /// The failure code of docs/receipts.md §10.1, when the inputs were read and something
    /// did not verify.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            VerifyCommandError::Input(_) => None,
            VerifyCommandError::Failed(e) => Some(e.code()),
            VerifyCommandError::Genesis(_) => Some("genesis"),
        }
    }
}

pub fn run(
    receipt_path: &Path,
    genesis_path: &Path,
    subject: Subject<'_>,
) -> Result<Verified, VerifyCommandError> {
    let read = |p: &Path| {
        std::fs::read(p)
            .map_err(|e| VerifyCommandError::Input(format!("cannot read {}: {e}", p.display())))
    };
    let genesis = Genesis::parse(&read(genesis_path)?).map_err(VerifyCommandError::Genesis)?;
    let bytes = read(receipt_path)?;
    let anchored = match Receipt::parse(&bytes)? {
        Receipt::Pending(_) => return Err(VerifyError::Pending.into()),
        Receipt::Anchored(r) => r,
    };
    let verified = receipt::verify(&anchored, &genesis)?;
    let content = match subject {
        Subject::None => None,
        Subject::Digest(d) => Some((
            receipt::check_content_digest(&anchored.event, d)?,
            "the given digest".to_string(),
        )),
        Subject::File(path) => {
            let attested = receipt::attested_content(&anchored.event)?;
            let file = std::fs::File::open(path).map_err(|e| {
                VerifyCommandError::Input(format!("cannot read {}: {e}", path.display()))
            })?;
            let actual = attested
                .algorithm
                .hash_reader(std::io::BufReader::new(file))
                .map_err(|e| {
                    VerifyCommandError::Input(format!("cannot read {}: {e}", path.display()))
                })?;
            let checked = receipt::check_content_digest(&anchored.event, &actual)?;
            Some((checked, format!("the file {}", path.display())))
        }
    };
    Ok(Verified {
        receipt: verified,
        content,
    })
}

/// The human summary printed on success.
pub fn summary(v: &Verified) -> String {
    let r = &v.receipt;
    let mut out = format!(
        "verified: event {} ({}) existed exactly as in the receipt no later than {}\n\
         \x20 chain        {} (block {}, hash {})\n\
         \x20 attested by  {} ({} of {} voting power)\n\
         \x20 event digest {}\n\
         \x20 batch root   {}\n",
        r.event_id,
        r.event_type,
        r.block_time,
        r.chain_id,
        r.height,
        r.block_hash,
        r.signers.join(", "),
        r.signed_power,
        r.total_power,
        r.event_digest,
        r.batch_root,
    );
    if let Some((content, what)) = &v.content {
        out.push_str(&format!(
            "  content      {} {} matches {}\n",
            content.algorithm, content.digest, what
        ));
    }
    out
}
