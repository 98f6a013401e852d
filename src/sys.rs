//! The few system calls coi-agent makes directly, through libc: the crate's only `unsafe` code,
//! kept here so it can be read in one place. Each function is safe to call; its `SAFETY`
//! comment says why the call inside is.

#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;

/// `poll` on one descriptor; the number of ready descriptors, or -1 with errno set.
pub(crate) fn poll(pollfd: &mut libc::pollfd, timeout_ms: i32) -> i32 {
    // SAFETY: `pollfd` points to one valid, exclusively borrowed `pollfd`.
    unsafe { libc::poll(pollfd, 1, timeout_ms) }
}

/// An `ioctl` that takes an int by value (EVIOCGRAB); 0 on success.
pub(crate) fn ioctl_int(fd: i32, request: libc::c_ulong, value: libc::c_int) -> i32 {
    // SAFETY: the request takes an int by value; `fd` is a descriptor the caller owns.
    unsafe { libc::ioctl(fd, request, value) }
}

/// Returns memory freed after a large one-off load (the order book's parse) to the system, so
/// an idle daemon's resident size is what it holds, not what it once held. glibc only.
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointer.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A new pseudo-terminal pair: the master, and the path of the slave (whose descriptor is
/// closed again: whoever plays the device opens it by path, as they would a real one).
///
/// # Errors
/// The system has no free pseudo-terminal.
pub fn openpty() -> std::io::Result<(File, PathBuf)> {
    let mut master: libc::c_int = -1;
    let mut slave: libc::c_int = -1;
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: valid pointers to two ints and a 128-byte name buffer (longer than any
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
    if res != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openpty succeeded: both descriptors are open and owned by nobody else.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    drop(slave);
    // SAFETY: openpty wrote a NUL-terminated path into `name`.
    let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
    Ok((
        File::from(master),
        PathBuf::from(path.to_string_lossy().into_owned()),
    ))
}

/// Turns a terminal's echo on or off (`operators add` reads a PIN without showing it); the
/// echo setting before. Not a terminal: an error, nothing changed.
///
/// # Errors
/// `fd` is not a terminal.
pub(crate) fn set_echo(fd: std::os::fd::BorrowedFd<'_>, on: bool) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd as _;
    let fd = fd.as_raw_fd();
    // SAFETY: termios is plain data; tcgetattr fills it or fails without touching it.
    let mut termios: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is borrowed open for the call; `termios` is a valid, exclusive pointer.
    if unsafe { libc::tcgetattr(fd, &mut termios) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let was = termios.c_lflag & libc::ECHO != 0;
    if on {
        termios.c_lflag |= libc::ECHO;
    } else {
        termios.c_lflag &= !libc::ECHO;
    }
    // SAFETY: as above; `termios` came from tcgetattr on the same descriptor.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &termios) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(was)
}

/// Makes a write beyond the process's file-size limit (`ulimit -f`) an ordinary error
/// (`EFBIG`: the journal refuses the transaction and says so) instead of the default SIGXFSZ,
/// which kills the process mid-write without a word.
pub fn ignore_file_size_signal() {
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code and touches no
    // memory of ours; it is done once at start, before any thread is spawned.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}
