//! Key files: an ed25519 key stored as JSON `{"public_key": hex, "secret_key": hex}`, used by the
//! node (its validator and network identity) and by the `yrd` CLI (member keys).
//!
//! Invariant: a loaded key's public half matches its secret half; anything else is refused.

use std::path::Path;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

/// Largest key file accepted, in bytes.
const KEY_FILE_BYTES_MAX: u64 = 4 * 1024;

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The content is not a valid key file.
    #[error("{path}: {problem}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
}

#[derive(Serialize, Deserialize)]
struct KeyFileJson {
    public_key: String,
    secret_key: String,
}

/// Generates a new key from the operating system's randomness.
#[must_use]
pub fn generate() -> SigningKey {
    SigningKey::generate(&mut rand_core::OsRng)
}

/// Writes a key file (mode 0600 on Unix), refusing to overwrite an existing file.
pub fn write(path: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let json = KeyFileJson {
        public_key: hex::encode(key.verifying_key().to_bytes()),
        secret_key: hex::encode(key.to_bytes()),
    };
    let text = serde_json::to_string_pretty(&json).map_err(|e| KeyFileError::Invalid {
        path: path.display().to_string(),
        problem: e.to_string(),
    })?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Reads a key file.
pub fn read(path: &Path) -> Result<SigningKey, KeyFileError> {
    let invalid = |problem: &str| KeyFileError::Invalid {
        path: path.display().to_string(),
        problem: problem.to_owned(),
    };
    let io = |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let length = std::fs::metadata(path).map_err(io)?.len();
    if length > KEY_FILE_BYTES_MAX {
        return Err(invalid("file is too large for a key file"));
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let json: KeyFileJson = serde_json::from_str(&text).map_err(|e| invalid(&e.to_string()))?;
    let secret: [u8; 32] = hex::decode(json.secret_key.trim())
        .map_err(|_| invalid("secret_key is not hex"))?
        .try_into()
        .map_err(|_| invalid("secret_key is not 32 bytes"))?;
    let key = SigningKey::from_bytes(&secret);
    if hex::encode(key.verifying_key().to_bytes()) != json.public_key.trim().to_lowercase() {
        return Err(invalid("public_key does not match secret_key"));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let dir = std::env::temp_dir().join(format!("yrd-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("key.json");
        let _ = std::fs::remove_file(&path);
        let key = generate();
        write(&path, &key).expect("write");
        assert_eq!(read(&path).expect("read").to_bytes(), key.to_bytes());
        assert!(write(&path, &key).is_err(), "never overwrites");
        std::fs::write(&path, "{\"public_key\":\"00\",\"secret_key\":\"zz\"}").expect("write");
        assert!(read(&path).is_err());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
