//! A Zebra printer emulator on TCP, for tests and for sites validating an installation without
//! wasting labels (`coi-agent dev printer-emulator`). It keeps every format it receives,
//! answers `~HS`, `~HQES` and `~HI` as a Zebra does, "prints" formats with a realistic delay,
//! and can be switched into faults (media out, ribbon out, head open, paused), to drop the
//! connection during a job, to stop answering status, or to answer slowly.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::status::{PrinterStatus, error_bits, extended_status_reply, host_status_reply};

/// A fault the emulator can be switched into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmulatedFault {
    MediaOut,
    RibbonOut,
    HeadOpen,
    Paused,
}

/// A running emulator; dropping it stops it.
#[derive(Debug)]
pub struct Emulator {
    shared: Arc<Mutex<State>>,
    address: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Connection tasks, aborted with the emulator.
    connections: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    /// Tells serial-port threads to end.
    stopped: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Debug, Default)]
struct State {
    faults: Vec<EmulatedFault>,
    silent: bool,
    status_delay: Duration,
    drop_next_job: bool,
    print_delay: Duration,
    /// Complete formats received (`^XA` ... `^XZ`), in order.
    received: Vec<Vec<u8>>,
    /// When each of them was complete.
    received_at: Vec<std::time::Instant>,
    /// Formats printed, in order.
    printed: Vec<Vec<u8>>,
    /// Formats received, not yet started.
    queue: VecDeque<Vec<u8>>,
    /// Labels of the format being printed still to go.
    labels_remaining: u32,
    /// The format being printed.
    printing: Option<Vec<u8>>,
    /// Bytes received on all connections, for throughput checks.
    bytes_received: u64,
    /// The print head's resolution as `~HI` reports it, dots per millimetre.
    dots_per_mm: u32,
}

impl Emulator {
    /// Listens on `address` (port 0 for any free port) and starts printing.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn start(address: SocketAddr) -> std::io::Result<Emulator> {
        let listener = TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(State {
            print_delay: Duration::from_millis(50),
            dots_per_mm: 12,
            ..State::default()
        }));
        let accept_shared = shared.clone();
        let connections: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let accepted = connections.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let task = tokio::spawn(serve(stream, accept_shared.clone()));
                let mut tasks = accepted
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                tasks.retain(|t| !t.is_finished());
                tasks.push(task);
            }
        });
        let print_shared = shared.clone();
        let printer = tokio::spawn(async move { print_loop(print_shared).await });
        Ok(Emulator {
            shared,
            address,
            tasks: vec![accept, printer],
            connections,
            stopped: Arc::default(),
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Switches a fault on or off.
    pub fn set_fault(&self, fault: EmulatedFault, on: bool) {
        let mut state = self.lock();
        state.faults.retain(|f| *f != fault);
        if on {
            state.faults.push(fault);
        }
    }

    /// Stops (or resumes) answering status queries.
    pub fn set_silent(&self, silent: bool) {
        self.lock().silent = silent;
    }

    /// Answers status queries after this delay.
    pub fn set_status_delay(&self, delay: Duration) {
        self.lock().status_delay = delay;
    }

    /// Drops the connection when the next format starts arriving.
    pub fn drop_during_next_job(&self) {
        self.lock().drop_next_job = true;
    }

    /// Serves the same printer on a new pseudo-terminal, as a serial printer; returns the path
    /// of the port to open (`serial://PATH`).
    ///
    /// # Errors
    /// No free pseudo-terminal.
    pub fn serve_serial(&self) -> std::io::Result<std::path::PathBuf> {
        let (master, path) = crate::sys::openpty()?;
        let shared = self.shared.clone();
        let stopped = self.stopped.clone();
        std::thread::spawn(move || serve_serial(master, shared, &stopped));
        Ok(path)
    }

    /// The resolution `~HI` reports, dots per millimetre (6, 8, 12 or 24; 12, 300 dpi, at start).
    pub fn set_dots_per_mm(&self, dots_per_mm: u32) {
        self.lock().dots_per_mm = dots_per_mm;
    }

    /// How long each label takes to print.
    pub fn set_print_delay(&self, delay: Duration) {
        self.lock().print_delay = delay;
    }

    /// Formats received completely, in order.
    pub fn received(&self) -> Vec<Vec<u8>> {
        self.lock().received.clone()
    }

    /// Formats printed, in order.
    pub fn printed(&self) -> Vec<Vec<u8>> {
        self.lock().printed.clone()
    }

    /// When each received format was complete (its last byte in), in order.
    pub fn received_at(&self) -> Vec<std::time::Instant> {
        self.lock().received_at.clone()
    }

    pub fn bytes_received(&self) -> u64 {
        self.lock().bytes_received
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.shared)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            task.abort();
        }
        self.stopped
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The emulator's state survives a panicking test thread; a poisoned lock is still usable.
fn lock(shared: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl State {
    fn status(&self) -> PrinterStatus {
        let has = |f| self.faults.contains(&f);
        PrinterStatus {
            paper_out: has(EmulatedFault::MediaOut),
            paused: has(EmulatedFault::Paused),
            head_open: has(EmulatedFault::HeadOpen),
            ribbon_out: has(EmulatedFault::RibbonOut),
            formats_in_buffer: self.queue.len() as u32,
            labels_remaining: self.labels_remaining,
            label_length_dots: 1218,
            ..PrinterStatus::default()
        }
    }

    fn errors(&self) -> u64 {
        self.faults.iter().fold(0, |mask, fault| {
            mask | match fault {
                EmulatedFault::MediaOut => error_bits::MEDIA_OUT,
                EmulatedFault::RibbonOut => error_bits::RIBBON_OUT,
                EmulatedFault::HeadOpen => error_bits::HEAD_OPEN,
                EmulatedFault::Paused => error_bits::PAUSED,
            }
        })
    }
}

/// One connection: formats are queued, tilde queries answered, in the order they arrive.
async fn serve(mut stream: TcpStream, shared: Arc<Mutex<State>>) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let Some(replies) = take_in(&buf[..n], &mut pending, &shared) else {
            return;
        };
        for (delay, reply) in replies {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if stream.write_all(&reply).await.is_err() {
                return;
            }
        }
    }
}

/// The same printer on a serial line: a thread owns the pty master, as the printer's firmware
/// owns its port.
fn serve_serial(
    mut master: std::fs::File,
    shared: Arc<Mutex<State>>,
    stopped: &std::sync::atomic::AtomicBool,
) {
    use std::io::{Read, Write};
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    // Reading a pty master while no one has the port open fails (EIO); the printer waits for
    // the next connection instead, until the emulator is dropped.
    while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
        // Wait at most 100 ms for input, so a dropped emulator's thread ends.
        let mut pollfd = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&master),
            events: libc::POLLIN,
            revents: 0,
        };
        if crate::sys::poll(&mut pollfd, 100) == 0 {
            continue;
        }
        let n = match master.read(&mut buf) {
            Ok(n) if n > 0 => n,
            _ => {
                pending.clear();
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let Some(replies) = take_in(&buf[..n], &mut pending, &shared) else {
            // Unplugged mid-job: what was pending is lost; the port itself stays.
            pending.clear();
            continue;
        };
        for (delay, reply) in replies {
            std::thread::sleep(delay);
            let _ = master.write_all(&reply);
        }
    }
}

/// Takes in received bytes: queues whole formats and answers queries, in order. `None` when
/// the connection is to drop now (a job cut off mid-way).
fn take_in(
    bytes: &[u8],
    pending: &mut Vec<u8>,
    shared: &Mutex<State>,
) -> Option<Vec<(Duration, Vec<u8>)>> {
    let mut state = lock(shared);
    state.bytes_received += bytes.len() as u64;
    pending.extend_from_slice(bytes);
    // Unplugged mid-job: the format that has started arriving is cut off and lost.
    if state.drop_next_job && pending.windows(3).any(|w| w == b"^XA") {
        state.drop_next_job = false;
        return None;
    }
    let mut replies = Vec::new();
    loop {
        match next_command(pending) {
            Command::Incomplete => break,
            Command::Skip(len) => {
                pending.drain(..len);
            }
            Command::Format(len) => {
                let format = pending.drain(..len).collect::<Vec<u8>>();
                state.received.push(format.clone());
                state.received_at.push(std::time::Instant::now());
                state.queue.push_back(format);
            }
            Command::Query(len, query) => {
                pending.drain(..len);
                if state.silent {
                    continue;
                }
                let reply = match query {
                    Query::HostStatus => host_status_reply(&state.status()),
                    Query::ExtendedStatus => extended_status_reply(state.errors(), 0),
                    Query::Identification => {
                        let dpmm = state.dots_per_mm;
                        let dpi = match dpmm {
                            6 => 152,
                            8 => 203,
                            24 => 600,
                            _ => 300,
                        };
                        format!("\x02ZT411-{dpi}dpi,V85.20.01Z,{dpmm},8176KB\x03\r\n").into_bytes()
                    }
                };
                replies.push((state.status_delay, reply));
            }
        }
    }
    Some(replies)
}

enum Query {
    HostStatus,
    ExtendedStatus,
    Identification,
}

enum Command {
    Incomplete,
    Skip(usize),
    Format(usize),
    Query(usize, Query),
}

/// The next thing in the stream: a whole format, a tilde query, or bytes to skip (whitespace,
/// unknown commands).
fn next_command(pending: &[u8]) -> Command {
    if pending.is_empty() {
        return Command::Incomplete;
    }
    for (prefix, query) in [
        (&b"~HQES"[..], Query::ExtendedStatus),
        (b"~HS", Query::HostStatus),
        (b"~HI", Query::Identification),
    ] {
        if pending.starts_with(prefix) {
            return Command::Query(prefix.len(), query);
        }
        if prefix.starts_with(pending) {
            return Command::Incomplete;
        }
    }
    if pending.starts_with(b"^XA") {
        return match pending.windows(3).position(|w| w == b"^XZ") {
            Some(end) => Command::Format(end + 3),
            None => Command::Incomplete,
        };
    }
    if b"^XA".starts_with(pending) {
        return Command::Incomplete;
    }
    Command::Skip(1)
}

/// Prints queued formats, one label every `print_delay`, stopping while a fault is on.
async fn print_loop(shared: Arc<Mutex<State>>) {
    loop {
        let delay = {
            let mut state = lock(&shared);
            if state.faults.is_empty()
                && state.printing.is_none()
                && let Some(format) = state.queue.pop_front()
            {
                state.labels_remaining = copies(&format);
                state.printing = Some(format);
            }
            state.print_delay
        };
        tokio::time::sleep(delay.max(Duration::from_millis(1))).await;
        let mut state = lock(&shared);
        if state.faults.is_empty() && state.printing.is_some() {
            state.labels_remaining = state.labels_remaining.saturating_sub(1);
            if state.labels_remaining == 0
                && let Some(format) = state.printing.take()
            {
                state.printed.push(format);
            }
        }
    }
}

/// `^PQn` in a format: n copies (1 without it).
fn copies(format: &[u8]) -> u32 {
    let Some(at) = format.windows(3).position(|w| w == b"^PQ") else {
        return 1;
    };
    let digits: String = format[at + 3..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .map(|&b| char::from(b))
        .collect();
    digits.parse().unwrap_or(1).max(1)
}
