//! The local API's bearer token: a file only the agent's user can read, made at first start.

use crate::secret_file::read as read_token_file;

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

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
