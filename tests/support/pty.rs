//! A pseudo-terminal pair (openpty) whose slave is reachable through a symlink we control, so a
//! test can "unplug" a serial device (close the master, remove the link) and "plug it back"
//! at the same path, as socat's `link=` does.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct Pty {
    master: File,
    link: PathBuf,
}

impl Pty {
    /// Opens a new pair and points `link` at its slave.
    pub fn open_at(link: &Path) -> Pty {
        let (master, slave_path) = coi_agent::sys::openpty().expect("a free pseudo-terminal");
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(&slave_path, link).expect("symlink to the pty slave");
        Pty {
            master,
            link: link.to_owned(),
        }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        self.master
            .write_all(bytes)
            .expect("write to the pty master");
        self.master.flush().expect("flush the pty master");
    }

    /// Closes the master (readers of the slave see a hang-up) and removes the link.
    pub fn unplug(self) {
        let _ = std::fs::remove_file(&self.link);
        drop(self.master);
    }
}
