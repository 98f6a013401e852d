//! The local API's bearer token: a file only the agent's user can read, made at first start.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;

/// The longest token file read: a bearer token is tens of bytes.
pub const MAX_TOKEN_FILE: u64 = 4096;

/// Why a token file was not used (each says what to do).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenFileError {
    #[error("{0} is not a regular file (a FIFO or device cannot hold a token)")]
    NotAFile(String),
    #[error("{path} has mode {mode:o}: it must be readable by its owner only (chmod 600 {path})")]
    Readable { path: String, mode: u32 },
    #[error("{0} is longer than a token ({MAX_TOKEN_FILE} bytes at most)")]
    TooLong(String),
    #[error("{0} is empty")]
    Empty(String),
    #[error("{0} is not text")]
    NotText(String),
    #[error("{path}: {problem}")]
    Io { path: String, problem: String },
}

/// Reads a bearer token from `path`: a regular file, private to its owner, at most
/// [`MAX_TOKEN_FILE`] bytes, not empty. Never blocks on a FIFO nor reads a device.
///
/// # Errors
/// [`TokenFileError`], naming the file and what to do.
pub fn read_token_file(path: &Path) -> Result<String, TokenFileError> {
    use std::io::Read as _;
    let shown = path.display().to_string();
    let io = |e: std::io::Error| TokenFileError::Io {
        path: shown.clone(),
        problem: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(TokenFileError::NotAFile(shown));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(TokenFileError::Readable {
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
    file.take(MAX_TOKEN_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_TOKEN_FILE {
        return Err(TokenFileError::TooLong(shown));
    }
    let text = String::from_utf8(bytes).map_err(|_| TokenFileError::NotText(shown.clone()))?;
    let token = text.trim().to_owned();
    if token.is_empty() {
        return Err(TokenFileError::Empty(shown));
    }
    Ok(token)
}

/// Reads the token at `path`, or makes one (32 random bytes as hex, mode 0600) if the file
/// does not exist.
///
/// # Errors
/// The file is readable or writable by group or others (a token others can read is no
/// secret), is empty, or cannot be read or made.
pub fn load_or_create(path: &Path) -> anyhow::Result<String> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(_) => read_token_file(path).map_err(|e| anyhow::anyhow!("api token file {e}")),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut bytes))
                .map_err(|e| anyhow::anyhow!("api token: read /dev/urandom: {e}"))?;
            let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| anyhow::anyhow!("create api token file {shown}: {e}"))?;
            writeln!(file, "{token}")
                .and_then(|()| file.sync_all())
                .map_err(|e| anyhow::anyhow!("write api token file {shown}: {e}"))?;
            tracing::info!(path = %shown, "api token created");
            Ok(token)
        }
        Err(err) => anyhow::bail!("api token file {shown}: {err}"),
    }
}

/// Compares two tokens in time that depends on neither where they differ nor their lengths
/// (their SHA-256 digests are compared).
pub fn same(given: &str, expected: &str) -> bool {
    use sha2::Digest as _;
    let (given, expected) = (
        sha2::Sha256::digest(given.as_bytes()),
        sha2::Sha256::digest(expected.as_bytes()),
    );
    given
        .iter()
        .zip(expected.iter())
        .fold(0u8, |diff, (a, b)| diff | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
        assert!(!same("", "a"));
    }
}
