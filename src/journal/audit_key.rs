//! The audit key: a per-installation secret that keys the audit chain (HMAC-SHA256), so that
//! whoever can write the journal file but not read the key cannot recompute the chain after an
//! edit. Kept in its own file beside the journal (`<journal>.audit-key`, mode 0600), never in
//! the journal, and made under the journal's write lock the first time a journal is opened for
//! writing without one.
//!
//! The file says from which entry on every entry is keyed (`from`), so a trail rewritten as
//! unkeyed entries is found. Losing the file loses the means to check the entries it keyed
//! (their links are still checked); a new key is then made and the change recorded in the
//! trail (docs/audit.md).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// The first line of a key file.
const HEADER: &str = "coi-agent audit key v1";

/// A loaded audit key. Its bytes are never printed (`Debug` shows the id only).
#[derive(Clone, PartialEq, Eq)]
pub struct AuditKey {
    secret: [u8; 32],
    /// 16 hex digits naming the key (a digest of it): stored with each entry it keys.
    id: String,
    /// Every entry from this one on is keyed with this key.
    from: i64,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKey")
            .field("id", &self.id)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// Why a key file was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("no audit key at {0}")]
    Missing(String),
    #[error("audit key {0}")]
    Unreadable(String),
    #[error(
        "audit key {path}: this user cannot read it (owned by uid {owner}): run coi-agent as the user the journal belongs to, or give it back with chown"
    )]
    NotOwn { path: String, owner: u32 },
    #[error(
        "audit key {0} is not an audit key file (expected \"{HEADER}\", a key and a from line)"
    )]
    Malformed(String),
    #[error("audit key {path}: could not be made: {problem}")]
    Create { path: String, problem: String },
}

/// Where the key of the journal at `journal` is kept: beside it, `<journal>.audit-key`.
pub fn path_for(journal: &Path) -> PathBuf {
    let mut name = journal.as_os_str().to_owned();
    name.push(".audit-key");
    PathBuf::from(name)
}

impl AuditKey {
    /// The key's id: 16 hex digits of a digest of it, safe to show and store.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The first entry this key must key.
    pub fn from(&self) -> i64 {
        self.from
    }

    pub(crate) fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    fn new(secret: [u8; 32], from: i64) -> AuditKey {
        let mut digest = Sha256::new();
        digest.update(b"coi-agent audit key id\0");
        digest.update(secret);
        let id = super::audit::hex(&digest.finalize()[..8]);
        AuditKey { secret, id, from }
    }

    /// Reads the key file at `path`: a regular file private to its owner, a few lines.
    ///
    /// # Errors
    /// [`KeyError::Missing`] when there is no file; otherwise why it cannot be used.
    pub fn load(path: &Path) -> Result<AuditKey, KeyError> {
        let shown = path.display().to_string();
        match std::fs::metadata(path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyError::Missing(shown));
            }
            Err(err) => return Err(KeyError::Unreadable(format!("{shown}: {err}"))),
            Ok(_) => {}
        }
        let text = match crate::secret_file::read(path) {
            Ok(text) => text,
            Err(crate::secret_file::SecretFileError::Io { problem, .. })
                if problem.contains("denied") =>
            {
                use std::os::unix::fs::MetadataExt as _;
                let owner = std::fs::metadata(path).map_or(0, |m| m.uid());
                return Err(KeyError::NotOwn { path: shown, owner });
            }
            Err(problem) => return Err(KeyError::Unreadable(problem.to_string())),
        };
        Self::parse(&text).ok_or(KeyError::Malformed(shown))
    }

    fn parse(text: &str) -> Option<AuditKey> {
        let mut lines = text.lines().map(str::trim);
        if lines.next()? != HEADER {
            return None;
        }
        let (mut secret, mut from) = (None, None);
        for line in lines {
            match line.split_once(' ') {
                Some(("key", hex)) if hex.len() == 64 => {
                    let mut bytes = [0u8; 32];
                    for (i, byte) in bytes.iter_mut().enumerate() {
                        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
                    }
                    secret = Some(bytes);
                }
                Some(("from", seq)) => from = Some(seq.parse::<i64>().ok().filter(|s| *s >= 1)?),
                _ if line.is_empty() => {}
                _ => return None,
            }
        }
        Some(AuditKey::new(secret?, from?))
    }

    /// Makes a key that keys every entry from `from` on and keeps it at `path` (0600, written
    /// and synced before it appears there, never replacing a file another process made first:
    /// that one is read and returned instead).
    ///
    /// # Errors
    /// The key could not be made or written.
    pub fn create(path: &Path, from: i64) -> Result<AuditKey, KeyError> {
        let shown = path.display().to_string();
        let failed = |problem: String| KeyError::Create {
            path: shown.clone(),
            problem,
        };
        let mut secret = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut secret))
            .map_err(|e| failed(format!("read /dev/urandom: {e}")))?;
        let key = AuditKey::new(secret, from);
        let mut staged = path.as_os_str().to_owned();
        staged.push(format!(".new-{}", std::process::id()));
        let staged = PathBuf::from(staged);
        let written = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&staged)?;
            writeln!(
                file,
                "{HEADER}\nkey {}\nfrom {from}",
                super::audit::hex(&key.secret)
            )?;
            file.sync_all()?;
            // A link never replaces: a key another process made first stays.
            std::fs::hard_link(&staged, path)
        })();
        let _ = std::fs::remove_file(&staged);
        match written {
            Ok(()) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
                }
                Ok(key)
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => AuditKey::load(path),
            Err(err) => Err(failed(err.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_reads_back_and_never_shows_its_secret() {
        let dir = std::env::temp_dir().join(format!("coi-audit-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j.sqlite.audit-key");
        let _ = std::fs::remove_file(&path);
        let made = AuditKey::create(&path, 7).unwrap();
        assert_eq!(AuditKey::load(&path).unwrap(), made);
        assert_eq!(made.from(), 7);
        assert_eq!(made.id().len(), 16);
        let shown = format!("{made:?}");
        assert!(
            !shown.contains(&super::super::audit::hex(made.secret())),
            "{shown}"
        );
        // A second create finds the first and returns it.
        assert_eq!(AuditKey::create(&path, 9).unwrap(), made);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn malformed_key_files_are_refused() {
        let good = format!("{HEADER}\nkey {}\nfrom 1\n", "ab".repeat(32));
        assert!(AuditKey::parse(&good).is_some());
        for bad in [
            String::new(),
            format!("{HEADER}\nkey {}\n", "ab".repeat(32)),
            format!("{HEADER}\nkey {}\nfrom 0\n", "ab".repeat(32)),
            format!("{HEADER}\nkey {}\nfrom 1\n", "zz".repeat(32)),
            format!("{HEADER}\nkey {}\nfrom 1\n", "ab".repeat(31)),
            format!("other\nkey {}\nfrom 1\n", "ab".repeat(32)),
            format!("{HEADER}\nkey {}\nfrom 1\nmore 2\n", "ab".repeat(32)),
            format!("{HEADER}\nkey é{}\nfrom 1\n", "a".repeat(62)),
        ] {
            assert!(AuditKey::parse(&bad).is_none(), "{bad}");
        }
    }
}
