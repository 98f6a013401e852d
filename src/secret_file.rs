//! Secret files (the API and central tokens, the audit key): read only when they are regular
//! files private to their owner, and never more than a few kilobytes of them.

use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;

/// The longest secret file read: a token or key is tens of bytes.
pub const MAX_BYTES: u64 = 4096;

/// Why a secret file was not used (each says what to do).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretFileError {
    #[error("{0} is not a regular file (a FIFO or device cannot hold a token or key)")]
    NotAFile(String),
    #[error("{path} has mode {mode:o}: it must be readable by its owner only (chmod 600 {path})")]
    Readable { path: String, mode: u32 },
    #[error("{0} is too long for a token or key file ({MAX_BYTES} bytes at most)")]
    TooLong(String),
    #[error("{0} is empty")]
    Empty(String),
    #[error("{0} is not text")]
    NotText(String),
    #[error("{path}: {problem}")]
    Io { path: String, problem: String },
}

/// Reads a secret (a bearer token, an audit key) from `path`: a regular file, private to its owner, at most
/// [`MAX_BYTES`] bytes, not empty. Never blocks on a FIFO nor reads a device.
///
/// # Errors
/// [`SecretFileError`], naming the file and what to do.
pub fn read(path: &Path) -> Result<String, SecretFileError> {
    use std::io::Read as _;
    let shown = path.display().to_string();
    let io = |e: std::io::Error| SecretFileError::Io {
        path: shown.clone(),
        problem: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(SecretFileError::NotAFile(shown));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(SecretFileError::Readable {
            path: shown,
            mode: meta.mode() & 0o777,
        });
    }
    // O_NONBLOCK: were the file swapped for a FIFO after the check, opening it does not wait.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(SecretFileError::TooLong(shown));
    }
    let text = String::from_utf8(bytes).map_err(|_| SecretFileError::NotText(shown.clone()))?;
    let token = text.trim().to_owned();
    if token.is_empty() {
        return Err(SecretFileError::Empty(shown));
    }
    Ok(token)
}
