//! Validator signing keys. A private key never leaves its node's directory.

use ed25519_dalek::{SigningKey, VerifyingKey};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write key file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("key file {0} does not hold a 32-byte hex Ed25519 seed")]
    Malformed(String),
    #[error("the system random source failed: {0}")]
    Random(String),
}

pub fn generate_signing_key() -> Result<SigningKey, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(SigningKey::from_bytes(&seed))
}

pub fn public_key_hex(key: &SigningKey) -> String {
    hex::encode(key.verifying_key().to_bytes())
}

pub fn parse_public_key(hex_key: &str) -> Result<VerifyingKey, String> {
    if hex_key.len() != 64
        || !hex_key
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err("expected 64 lowercase hex characters".into());
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_key, &mut bytes).map_err(|e| e.to_string())?;
    let key =
        VerifyingKey::from_bytes(&bytes).map_err(|_| "not a valid Ed25519 point".to_string())?;
    // Other verifiers (libsodium among them) refuse non-canonical encodings and small-order
    // keys; refusing them here too keeps every verifier's verdict the same.
    if key.to_bytes() != bytes {
        return Err("not a canonical Ed25519 point encoding".into());
    }
    if key.is_weak() {
        return Err("a small-order Ed25519 key cannot be a validator key".into());
    }
    Ok(key)
}

/// Loads the key at `path`, or creates it (mode 0600) when the file does not exist.
pub fn load_or_create(path: &Path) -> Result<SigningKey, KeyError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mut seed = [0u8; 32];
            hex::decode_to_slice(text.trim(), &mut seed)
                .map_err(|_| KeyError::Malformed(path.display().to_string()))?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = generate_signing_key()?;
            write_private(path, &hex::encode(key.to_bytes())).map_err(|source| {
                KeyError::Write {
                    path: path.display().to_string(),
                    source,
                }
            })?;
            Ok(key)
        }
        Err(source) => Err(KeyError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}
