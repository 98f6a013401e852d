//! A pseudo-terminal pair (openpty) whose slave is reachable through a symlink we control, so a
//! test can "unplug" a serial device (close the master, remove the link) and "plug it back"
//! at the same path, as socat's `link=` does.

use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub struct Pty {
    master: File,
    link: PathBuf,
}

impl Pty {
    /// Opens a new pair and points `link` at its slave.
    pub fn open_at(link: &Path) -> Pty {
        let (master, slave_path) = os::openpty();
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

#[allow(unsafe_code)]
mod os {
    use super::*;

    /// `openpty` through libc; the slave descriptor is closed again (the reader opens the
    /// slave by path, as it would a real device).
    pub fn openpty() -> (File, PathBuf) {
        let mut master: libc::c_int = -1;
        let mut slave: libc::c_int = -1;
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: valid pointers to two ints and a 128-byte name buffer (larger than any
        // /dev/pts path); null termios and winsize are allowed.
        let res = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                name.as_mut_ptr(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(res, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: openpty succeeded, so both are open descriptors that we now own.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        drop(slave);
        // SAFETY: openpty wrote a NUL-terminated path into `name`.
        let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
        (
            File::from(master),
            PathBuf::from(path.to_string_lossy().into_owned()),
        )
    }
}
