//! How bytes reach a printer, and how its status comes back: a printer URI parsed into plain
//! data, then a connection that sends ZPL and asks tilde queries with a deadline. A query that
//! gets no complete answer in time is `Timeout`, which callers treat as unknown, never ok.

use std::os::unix::fs::DirBuilderExt as _;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A printer address, as a site writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrinterUri {
    /// `tcp://host:port` (raw port 9100 of a network Zebra).
    Tcp(String),
    /// `spool:///path/to/dir`: each job's ZPL written to a file (the embedded default printer).
    Spool(PathBuf),
    /// `serial:///dev/ttyS0?baud=9600&parity=none&flow=hardware`.
    Serial(crate::scanner::source::SerialSettings),
    /// `file:///dev/usb/lp0[?status=false]`: the Linux usblp device (Zebra printers answer
    /// status through it; `status=false` for one that does not).
    File { path: PathBuf, status: bool },
    /// `usb://0a5f:0166[?serial=...]`: a USB printer-class interface through libusb.
    Usb {
        vendor_id: u16,
        product_id: u16,
        serial: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrinterUriError {
    #[error("printer {uri:?}: {problem}")]
    Invalid { uri: String, problem: String },
}

/// Why talking to a printer failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("connect to {address}: {cause}{}", crate::device_access::hint(cause.kind()))]
    Connect {
        address: String,
        cause: std::io::Error,
    },
    #[error("no answer from the printer within {0:?}")]
    Timeout(Duration),
    #[error("connection to the printer lost: {0}")]
    Disconnected(std::io::Error),
    #[error("the printer stopped taking data (not all was written within {0:?})")]
    WriteTimeout(Duration),
    #[error("spool {path}: {cause}")]
    Spool { path: String, cause: std::io::Error },
}

/// How a job's outcome can be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The printer answers `~HS`: its status decides.
    Status,
    /// A spool directory is the printer: a job written whole is done.
    Spool,
    /// Bytes go out, nothing comes back: a sent job stays unconfirmed.
    WriteOnly,
}

/// An open printer.
#[derive(Debug)]
pub enum Connection {
    Tcp {
        stream: TcpStream,
        address: String,
    },
    Spool {
        dir: PathBuf,
    },
    /// The port is moved into a blocking task for each operation and back (serialport blocks);
    /// `None` only while an operation runs or after it failed.
    Serial {
        port: Option<Box<dyn serialport::SerialPort>>,
        path: String,
        baud: u32,
    },
    /// A device file (usblp); reads wait with `poll`, so a silent printer cannot hang a thread.
    File {
        file: std::sync::Arc<std::fs::File>,
        path: String,
    },
    Usb(std::sync::Arc<super::usb::UsbPrinter>),
}

/// Connecting to a network printer that does not answer in this long means it is off or
/// unreachable; a printer on the site network answers in milliseconds.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

impl PrinterUri {
    /// Parses `tcp://host:port` or `spool:///dir`.
    ///
    /// # Errors
    /// An unknown scheme, or a missing address or path.
    pub fn parse(uri: &str) -> Result<PrinterUri, PrinterUriError> {
        let invalid = |problem: &str| PrinterUriError::Invalid {
            uri: uri.to_owned(),
            problem: problem.to_owned(),
        };
        match uri.split_once("://") {
            Some(("tcp", address)) if address.contains(':') => {
                Ok(PrinterUri::Tcp(address.to_owned()))
            }
            Some(("tcp", _)) => Err(invalid("expected tcp://HOST:PORT")),
            Some(("spool", path)) if path.starts_with('/') => {
                Ok(PrinterUri::Spool(PathBuf::from(path)))
            }
            Some(("spool", _)) => Err(invalid("expected spool:///absolute/directory")),
            Some(("file", rest)) => {
                let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
                let status = match query {
                    "" | "status=true" => true,
                    "status=false" => false,
                    _ => return Err(invalid("the only parameter is status=true|false")),
                };
                if !path.starts_with('/') {
                    return Err(invalid("expected file:///dev/usb/lpN"));
                }
                Ok(PrinterUri::File {
                    path: PathBuf::from(path),
                    status,
                })
            }
            Some(("usb", rest)) => {
                let (ids, query) = rest.split_once('?').unwrap_or((rest, ""));
                let (vendor_id, product_id) =
                    crate::scanner::source::usb_ids(ids).map_err(|problem| invalid(&problem))?;
                let serial = match query.split_once('=') {
                    None if query.is_empty() => None,
                    Some(("serial", value)) if !value.is_empty() => Some(value.to_owned()),
                    _ => return Err(invalid("the only parameter is serial=SERIAL_NUMBER")),
                };
                Ok(PrinterUri::Usb {
                    vendor_id,
                    product_id,
                    serial,
                })
            }
            Some(("serial", _)) => crate::scanner::source::serial_from_uri(uri)
                .map(PrinterUri::Serial)
                .map_err(|problem| invalid(&problem)),
            _ => Err(invalid(
                "unknown scheme (expected tcp://, serial:// or spool://)",
            )),
        }
    }

    /// How the outcome of a job on this printer can be known.
    pub fn channel(&self) -> Channel {
        match self {
            PrinterUri::Spool(_) => Channel::Spool,
            _ if self.has_status() => Channel::Status,
            _ => Channel::WriteOnly,
        }
    }

    /// Whether the printer can report status (a spool directory cannot).
    pub fn has_status(&self) -> bool {
        match self {
            PrinterUri::Tcp(_) | PrinterUri::Serial(_) | PrinterUri::Usb { .. } => true,
            PrinterUri::File { status, .. } => *status,
            PrinterUri::Spool(_) => false,
        }
    }
}

impl Connection {
    /// Opens the printer.
    ///
    /// # Errors
    /// The printer is unreachable, or the spool directory cannot be created.
    pub async fn open(uri: &PrinterUri) -> Result<Connection, TransportError> {
        match uri {
            PrinterUri::Tcp(address) => {
                let connect =
                    tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await;
                let stream = match connect {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(source)) => {
                        return Err(TransportError::Connect {
                            address: address.clone(),
                            cause: source,
                        });
                    }
                    Err(_) => {
                        let source = std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "no answer within 3 s",
                        );
                        return Err(TransportError::Connect {
                            address: address.clone(),
                            cause: source,
                        });
                    }
                };
                // Small writes go out at once: a job is one write, a query a few bytes.
                let _ = stream.set_nodelay(true);
                Ok(Connection::Tcp {
                    stream,
                    address: address.clone(),
                })
            }
            PrinterUri::Serial(settings) => {
                let settings = settings.clone();
                let path = settings.path.display().to_string();
                let baud = settings.baud;
                let opened =
                    tokio::task::spawn_blocking(move || crate::scanner::serial::open(&settings))
                        .await;
                match opened {
                    Ok(Ok(port)) => Ok(Connection::Serial {
                        port: Some(port),
                        path,
                        baud,
                    }),
                    Ok(Err(err)) => Err(TransportError::Connect {
                        address: path,
                        cause: err.into(),
                    }),
                    Err(err) => Err(TransportError::Connect {
                        address: path,
                        cause: std::io::Error::other(err.to_string()),
                    }),
                }
            }
            PrinterUri::File { path, status } => {
                let shown = path.display().to_string();
                let file = std::fs::OpenOptions::new()
                    .read(*status)
                    .write(true)
                    .open(path)
                    .map_err(|source| TransportError::Connect {
                        address: shown.clone(),
                        cause: source,
                    })?;
                Ok(Connection::File {
                    file: std::sync::Arc::new(file),
                    path: shown,
                })
            }
            PrinterUri::Usb {
                vendor_id,
                product_id,
                serial,
            } => {
                let (vendor_id, product_id, serial) = (*vendor_id, *product_id, serial.clone());
                let address = format!("usb://{vendor_id:04x}:{product_id:04x}");
                let opened = tokio::task::spawn_blocking(move || {
                    super::usb::UsbPrinter::open(vendor_id, product_id, serial.as_deref())
                })
                .await;
                match opened {
                    Ok(Ok(printer)) => Ok(Connection::Usb(std::sync::Arc::new(printer))),
                    Ok(Err(problem)) => Err(TransportError::Connect {
                        address,
                        cause: std::io::Error::other(problem),
                    }),
                    Err(join) => Err(TransportError::Connect {
                        address,
                        cause: std::io::Error::other(join.to_string()),
                    }),
                }
            }
            PrinterUri::Spool(dir) => {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|source| TransportError::Spool {
                        path: dir.display().to_string(),
                        cause: source,
                    })?;
                Ok(Connection::Spool { dir: dir.clone() })
            }
        }
    }

    /// Sends bytes to the printer (for a spool, writes `<name>.zpl` durably).
    ///
    /// # Errors
    /// The connection dropped, or the spool file could not be written.
    pub async fn send(&mut self, name: &str, bytes: &[u8]) -> Result<(), TransportError> {
        let deadline = write_deadline(bytes.len(), self.baud());
        match self {
            Connection::Tcp { stream, .. } => {
                match tokio::time::timeout(deadline, stream.write_all(bytes)).await {
                    Ok(res) => res.map_err(TransportError::Disconnected),
                    Err(_) => Err(TransportError::WriteTimeout(deadline)),
                }
            }
            Connection::Serial { .. } => {
                let bytes = bytes.to_vec();
                // The port's short read timeout would also cut writes short: a job gets the time
                // its size needs at the line's speed. No drain (tcdrain has no timeout).
                self.serial(move |port| {
                    port.set_timeout(deadline).map_err(std::io::Error::from)?;
                    let res = port.write_all(&bytes);
                    let _ = port.set_timeout(crate::scanner::serial::READ_TIMEOUT);
                    res
                })
                .await
            }
            Connection::File { file, .. } => {
                let (file, bytes) = (file.clone(), bytes.to_vec());
                // A usblp write to a printer that stopped taking data blocks its thread; the job
                // stops waiting at the deadline (the thread ends when the device does).
                let write = blocking(move || std::io::Write::write_all(&mut &*file, &bytes));
                match tokio::time::timeout(deadline, write).await {
                    Ok(res) => res,
                    Err(_) => Err(TransportError::WriteTimeout(deadline)),
                }
            }
            Connection::Usb(usb) => {
                let (usb, bytes) = (usb.clone(), bytes.to_vec());
                blocking(move || usb.write(&bytes)).await
            }
            Connection::Spool { dir } => {
                let dir = dir.clone();
                let bytes = bytes.to_vec();
                let name = name.to_owned();
                let shown = dir.display().to_string();
                match tokio::task::spawn_blocking(move || write_spool(&dir, &name, &bytes)).await {
                    Ok(res) => res,
                    Err(join) => Err(TransportError::Spool {
                        path: shown,
                        cause: std::io::Error::other(join.to_string()),
                    }),
                }
            }
        }
    }

    fn baud(&self) -> Option<u32> {
        match self {
            Connection::Serial { baud, .. } => Some(*baud),
            _ => None,
        }
    }

    /// Sends a tilde query and reads until `frames` STX/ETX strings have arrived.
    ///
    /// # Errors
    /// `Timeout` when the answer is not complete in time; `Disconnected` when the connection
    /// drops. A spool has no status: `Timeout(0)`.
    pub async fn query(
        &mut self,
        command: &[u8],
        frames: usize,
        timeout: Duration,
    ) -> Result<Vec<u8>, TransportError> {
        if let Connection::Serial { .. } = self {
            return self
                .serial_answer(Some(command.to_vec()), frames, timeout)
                .await;
        }
        if let Some(answer) = self
            .device_answer(Some(command.to_vec()), frames, timeout)
            .await
        {
            return answer;
        }
        let Connection::Tcp { stream, .. } = self else {
            return Err(TransportError::Timeout(Duration::ZERO));
        };
        // A late answer to an earlier query that timed out must not pass for this one. What
        // is waiting is read at most up to MAX_ANSWER: a device that sends without being asked
        // (not a printer, or a printer gone wrong) would otherwise keep this loop busy for ever.
        let mut stale = [0u8; 1024];
        let mut drained = 0usize;
        while let Ok(n) = stream.try_read(&mut stale) {
            if n == 0 {
                return Err(TransportError::Disconnected(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "closed by the printer",
                )));
            }
            drained += n;
            if drained > MAX_ANSWER {
                return Err(flooding());
            }
        }
        match tokio::time::timeout(timeout, stream.write_all(command)).await {
            Ok(res) => res.map_err(TransportError::Disconnected)?,
            Err(_) => return Err(TransportError::WriteTimeout(timeout)),
        }
        read_frames(stream, frames, timeout).await
    }

    /// Reads the answer to a query already sent (one written with a job).
    ///
    /// # Errors
    /// As [`Connection::query`].
    pub async fn read_answer(
        &mut self,
        frames: usize,
        timeout: Duration,
    ) -> Result<Vec<u8>, TransportError> {
        if let Connection::Serial { .. } = self {
            return self.serial_answer(None, frames, timeout).await;
        }
        if let Some(answer) = self.device_answer(None, frames, timeout).await {
            return answer;
        }
        let Connection::Tcp { stream, .. } = self else {
            return Err(TransportError::Timeout(Duration::ZERO));
        };
        read_frames(stream, frames, timeout).await
    }
}

impl Connection {
    /// Runs `op` on the serial port in a blocking task.
    async fn serial<T: Send + 'static>(
        &mut self,
        op: impl FnOnce(&mut Box<dyn serialport::SerialPort>) -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, TransportError> {
        let Connection::Serial { port, .. } = self else {
            return Err(TransportError::Disconnected(std::io::Error::other(
                "not a serial printer",
            )));
        };
        let Some(mut taken) = port.take() else {
            return Err(TransportError::Disconnected(std::io::Error::other(
                "the serial port failed earlier",
            )));
        };
        let joined = tokio::task::spawn_blocking(move || {
            let res = op(&mut taken);
            (taken, res)
        })
        .await;
        match joined {
            Ok((back, Ok(value))) => {
                *port = Some(back);
                Ok(value)
            }
            Ok((_, Err(err))) if err.kind() == std::io::ErrorKind::TimedOut => {
                Err(TransportError::Timeout(Duration::ZERO))
            }
            Ok((_, Err(err))) => Err(TransportError::Disconnected(err)),
            Err(join) => Err(TransportError::Disconnected(std::io::Error::other(
                join.to_string(),
            ))),
        }
    }

    /// Writes `command` (if any), then reads until `frames` ETX bytes or the deadline.
    async fn serial_answer(
        &mut self,
        command: Option<Vec<u8>>,
        frames: usize,
        timeout: Duration,
    ) -> Result<Vec<u8>, TransportError> {
        let res = self
            .serial(move |port| {
                if let Some(command) = &command {
                    // A late answer to an earlier query must not pass for this one.
                    let _ = port.clear(serialport::ClearBuffer::Input);
                    port.write_all(command)?;
                    port.flush()?;
                }
                let deadline = std::time::Instant::now() + timeout;
                let mut answer = Vec::with_capacity(128);
                let mut buf = [0u8; 256];
                while answer.iter().filter(|&&b| b == 0x03).count() < frames {
                    if std::time::Instant::now() >= deadline {
                        return Ok(None);
                    }
                    if answer.len() > MAX_ANSWER {
                        return Err(std::io::Error::other(flooding().to_string()));
                    }
                    match port.read(&mut buf) {
                        Ok(0) => {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                "closed by the printer",
                            ));
                        }
                        Ok(n) => answer.extend_from_slice(&buf[..n]),
                        Err(err)
                            if matches!(
                                err.kind(),
                                std::io::ErrorKind::TimedOut
                                    | std::io::ErrorKind::WouldBlock
                                    | std::io::ErrorKind::Interrupted
                            ) => {}
                        Err(err) => return Err(err),
                    }
                }
                Ok(Some(answer))
            })
            .await?;
        res.ok_or(TransportError::Timeout(timeout))
    }
}

impl Connection {
    /// For a device file or a USB printer: writes `command` (if any), then reads until `frames`
    /// ETX bytes or the deadline. `None` for other connections.
    async fn device_answer(
        &mut self,
        command: Option<Vec<u8>>,
        frames: usize,
        timeout: Duration,
    ) -> Option<Result<Vec<u8>, TransportError>> {
        let deadline = std::time::Instant::now() + timeout;
        let done = move |answer: &[u8]| answer.iter().filter(|&&b| b == 0x03).count() >= frames;
        let res = match self {
            Connection::File { file, .. } => {
                let file = file.clone();
                blocking(move || {
                    use std::os::fd::AsRawFd as _;
                    if let Some(command) = &command {
                        std::io::Write::write_all(&mut &*file, command)?;
                    }
                    let mut answer = Vec::new();
                    let mut buf = [0u8; 256];
                    while !done(&answer) {
                        let left = deadline.saturating_duration_since(std::time::Instant::now());
                        if left.is_zero() {
                            return Ok(None);
                        }
                        if answer.len() > MAX_ANSWER {
                            return Err(std::io::Error::other(flooding().to_string()));
                        }
                        let mut pollfd = libc::pollfd {
                            fd: file.as_raw_fd(),
                            events: libc::POLLIN,
                            revents: 0,
                        };
                        if crate::sys::poll(&mut pollfd, left.as_millis().min(1000) as i32) <= 0 {
                            continue;
                        }
                        match std::io::Read::read(&mut &*file, &mut buf) {
                            // Nothing to read (a printer that does not answer through usblp).
                            Ok(0) => std::thread::sleep(Duration::from_millis(20)),
                            Ok(n) => answer.extend_from_slice(&buf[..n]),
                            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(err) => return Err(err),
                        }
                    }
                    Ok(Some(answer))
                })
                .await
            }
            Connection::Usb(usb) => {
                let usb = usb.clone();
                blocking(move || {
                    if let Some(command) = &command {
                        usb.write(command)?;
                    }
                    let mut answer = Vec::new();
                    while !done(&answer) {
                        let left = deadline.saturating_duration_since(std::time::Instant::now());
                        if left.is_zero() {
                            return Ok(None);
                        }
                        if answer.len() > MAX_ANSWER {
                            return Err(std::io::Error::other(flooding().to_string()));
                        }
                        answer.extend(usb.read(left)?);
                    }
                    Ok(Some(answer))
                })
                .await
            }
            _ => return None,
        };
        Some(res.and_then(|answer| answer.ok_or(TransportError::Timeout(timeout))))
    }
}

/// How long writing `len` bytes may take: 10 s, plus the time the bytes need at `baud` (10 bits a
/// byte on a serial line) or at 100 kB/s (a slow network printer's buffer), whichever is known.
fn write_deadline(len: usize, baud: Option<u32>) -> Duration {
    let bytes_per_second = baud.map_or(100_000, |baud| u64::from(baud / 10).max(1));
    Duration::from_secs(10) + Duration::from_millis(len as u64 * 1000 / bytes_per_second)
}

/// Writes a spool file whole or not at all: a temporary name, synced, then renamed. The job id
/// becomes the file name, so it must be a plain name.
fn write_spool(dir: &std::path::Path, name: &str, bytes: &[u8]) -> Result<(), TransportError> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let path = dir.join(format!("{name}.zpl"));
    let spool_err = |source| TransportError::Spool {
        path: path.display().to_string(),
        cause: source,
    };
    if !plain {
        return Err(spool_err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a job id in a spool must be letters, digits, '-', '_' or '.'",
        )));
    }
    let temporary = dir.join(format!(".{name}.zpl.partial"));
    // A label carries the patient's name and date of birth: readable by this user only.
    let mut file = {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(spool_err)?
    };
    std::io::Write::write_all(&mut file, bytes).map_err(spool_err)?;
    file.sync_all().map_err(spool_err)?;
    std::fs::rename(&temporary, &path).map_err(spool_err)?;
    Ok(())
}

/// Runs a blocking device operation off the async workers.
async fn blocking<T: Send + 'static>(
    op: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, TransportError> {
    match tokio::task::spawn_blocking(op).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(TransportError::Disconnected(err)),
        Err(join) => Err(TransportError::Disconnected(std::io::Error::other(
            join.to_string(),
        ))),
    }
}

/// The most a status answer may be: `~HS` is three short lines and `~HQES` a few more, so
/// anything near this is a device sending what it was not asked for.
const MAX_ANSWER: usize = 64 * 1024;

/// A device that sends more than any answer: the connection is dropped and reopened.
fn flooding() -> TransportError {
    TransportError::Disconnected(std::io::Error::other(format!(
        "the printer sends data it was not asked for (more than {} KiB): not a Zebra printer, or one in a fault loop; check what is at this address",
        MAX_ANSWER / 1024
    )))
}

/// Reads until `frames` ETX bytes have arrived; answers are small, so more than
/// [`MAX_ANSWER`] bytes is refused.
async fn read_frames(
    stream: &mut TcpStream,
    frames: usize,
    timeout: Duration,
) -> Result<Vec<u8>, TransportError> {
    let mut answer = Vec::with_capacity(128);
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + timeout;
    let mut ends = 0;
    while ends < frames {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await;
        match read {
            Err(_) => return Err(TransportError::Timeout(timeout)),
            Ok(Ok(0)) => {
                return Err(TransportError::Disconnected(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "closed by the printer",
                )));
            }
            Ok(Ok(n)) => {
                ends += buf[..n].iter().filter(|&&b| b == 0x03).count();
                answer.extend_from_slice(&buf[..n]);
            }
            Ok(Err(err)) => return Err(TransportError::Disconnected(err)),
        }
        if answer.len() > MAX_ANSWER {
            return Err(flooding());
        }
    }
    Ok(answer)
}
